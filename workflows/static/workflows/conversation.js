// The run page's conversation, live: an agent's model request shows its text as the model streams it ("tokens"
// frames, merged by offset), and once the request is stored its message replaces the streamed text (the
// conversation is a server fragment, fetched again when a model request of the run ends).
import { applyTokens } from "./live.js";
import { escapeHtml } from "./ui.js";

const ENDED = new Set(["step_succeeded", "step_failed", "step_canceled"]);

/**
 * `section`/`list`: the streaming card and its list; `statusOf(path)`: a step's status as the page knows it;
 * `refresh()`: fetch the conversation fragment again (a promise). Returns {tokens(frame), event(event)}.
 */
export function liveConversation({ section, list, statusOf, refresh }) {
  const texts = {}; // step path -> text so far
  const items = new Map(); // step path -> <li>

  function paint(path) {
    let li = items.get(path);
    if (!li) {
      li = document.createElement("li");
      li.className = "message message-response streaming";
      li.dataset.streamingStep = path;
      li.innerHTML = `<span class="mono small">${escapeHtml(path)} · response</span> <span class="small muted">streaming…</span><pre class="msg"></pre>`;
      list.append(li);
      items.set(path, li);
    }
    li.querySelector("pre").textContent = texts[path];
    section.hidden = false;
  }

  function drop(path) {
    delete texts[path];
    items.get(path)?.remove();
    items.delete(path);
    section.hidden = items.size === 0;
  }

  return {
    tokens(frame) {
      if (applyTokens(texts, frame, statusOf(frame.step))) paint(frame.step);
    },
    event(event) {
      const { kind, step, data = {} } = event;
      if (!step || !ENDED.has(kind)) return;
      if (kind === "step_succeeded" && data.kind === "model") {
        const done = () => drop(step); // the stored message is on the page: the streamed text goes
        refresh().then(done, done);
      } else if (step in texts) {
        drop(step);
      }
    },
  };
}
