// Unit tests of the browser client (static/workflows/live.js) against a fake WebSocket: node --test tests/js/
import assert from "node:assert/strict";
import test from "node:test";

import { LiveClient, applyEvent, applyTokens, defaultUrl, emptyRun, fetchValue, fmtBytes, livePath, valueRef, watchRun, watchRuns } from "../../workflows/static/workflows/live.js";

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.drop();
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  deliver(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  ops(op) {
    return this.sent.filter((f) => f.op === op);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ev = (topic, seq, kind = "step_log", step = "s", data = {}) => ({ op: "event", topic, seq, kind, step, data, at: "t" });

function client(t, options = {}) {
  FakeSocket.all = [];
  const live = new LiveClient("ws://test/ws/", { WebSocket: FakeSocket, backoff: { initial: 1, max: 4 }, ...options });
  t.after(() => live.close());
  return { live, socket: () => FakeSocket.all.at(-1) };
}

test("subscribes on open, applies each seq once and in order, acknowledges frames", async (t) => {
  const { live, socket } = client(t, { ackEvery: 2, ackDelay: 5 });
  const seen = [];
  live.subscribe("run:7", { onEvent: (e) => seen.push(e.seq) });
  socket().open();
  assert.deepEqual(socket().ops("subscribe"), [{ op: "subscribe", topic: "run:7", since: 0, id: 1 }]);
  socket().deliver({ op: "subscribed", topic: "run:7", since: 0, last_seq: 2 });
  for (const seq of [1, 2, 2, 1, 3]) socket().deliver(ev("run:7", seq));
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(socket().ops("ack").at(-1), { op: "ack", n: 6 });
  live.close();
});

test("reconnects with backoff and resubscribes from the last seq", async (t) => {
  const { live, socket } = client(t);
  const seen = [];
  const statuses = [];
  live.onStatus((s) => statuses.push(s));
  live.subscribe("run:7", { onEvent: (e) => seen.push(e.seq) });
  live.subscribe("runs", {});
  socket().open();
  socket().deliver({ op: "subscribed", topic: "run:7" });
  socket().deliver(ev("run:7", 1));
  socket().deliver(ev("run:7", 2));
  const first = socket();
  first.drop();
  await sleep(20);
  assert.notEqual(socket(), first);
  socket().open();
  assert.deepEqual(
    socket().ops("subscribe").map(({ topic, since }) => ({ topic, since })),
    [{ topic: "run:7", since: 2 }, { topic: "runs", since: undefined }],
  );
  socket().deliver({ op: "subscribed", topic: "run:7" });
  socket().deliver(ev("run:7", 3));
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(statuses, ["connecting", "open", "closed", "connecting", "open"]);
  live.close();
});

test("a resync or a gap asks again from the last seq, once", async (t) => {
  const { live, socket } = client(t);
  const seen = [];
  live.subscribe("run:9", { onEvent: (e) => seen.push(e.seq) }, { since: 4 });
  socket().open();
  socket().deliver({ op: "subscribed", topic: "run:9" });
  socket().deliver(ev("run:9", 5));
  socket().deliver({ op: "resync", topic: "run:9", since: 5 });
  assert.deepEqual(socket().ops("subscribe").at(-1).since, 5);
  socket().deliver({ op: "subscribed", topic: "run:9" });
  socket().deliver(ev("run:9", 8)); // a gap: never applied out of order
  socket().deliver(ev("run:9", 9));
  assert.equal(socket().ops("subscribe").length, 3);
  socket().deliver({ op: "subscribed", topic: "run:9" });
  for (const seq of [6, 7, 8, 9]) socket().deliver(ev("run:9", seq));
  assert.deepEqual(seen, [5, 6, 7, 8, 9]);
  live.close();
});

test("a fatal error ends the subscription and reaches its handler", async (t) => {
  const { live, socket } = client(t);
  const errors = [];
  live.subscribe("run:404", { onError: (f) => errors.push(f.code) });
  socket().open();
  socket().deliver({ op: "error", topic: "run:404", code: "not_found", message: "no run 404 that you may see" });
  assert.deepEqual(errors, ["not_found"]);
  socket().drop();
  await sleep(20);
  socket().open();
  assert.deepEqual(socket().ops("subscribe"), []);
  live.close();
});

test("watchRun builds the run's state; watchRuns keeps the newest summary of each run", async (t) => {
  const { live, socket } = client(t);
  let state;
  watchRun(live, 3, (run) => (state = structuredClone(run)));
  let list = [];
  watchRuns(live, "runs", (runs) => (list = runs));
  socket().open();
  const events = [
    ev("run:3", 1, "run_created", "", { input: { value: 1 } }),
    ev("run:3", 2, "step_pending", "inc", { attempt: 1 }),
    ev("run:3", 3, "run_started", ""),
    ev("run:3", 4, "step_running", "inc", { attempt: 1 }),
    ev("run:3", 5, "step_log", "inc", { message: "hello" }),
    ev("run:3", 6, "step_succeeded", "inc", { attempt: 1, output: { value: 2 } }),
    ev("run:3", 7, "run_succeeded", "", { output: { value: 2 } }),
  ];
  events.forEach((e) => socket().deliver(e));
  assert.equal(state.status, "succeeded");
  assert.deepEqual(state.output, { value: 2 });
  assert.deepEqual(state.steps.inc, { path: "inc", status: "succeeded", attempt: 1, output: { value: 2 }, error: null, progress: null });
  assert.deepEqual(state.logs.map((l) => l.message), ["hello"]);
  assert.equal(state.lastSeq, 7);

  const s = (id, seq, status, created_at) => ({ id, seq, status, created_at });
  socket().deliver({ op: "snapshot", topic: "runs", runs: [s(2, 5, "running", "b"), s(1, 9, "succeeded", "a")] });
  socket().deliver({ op: "run", topic: "runs", run: s(2, 4, "pending", "b") }); // older: ignored
  socket().deliver({ op: "run", topic: "runs", run: s(3, 1, "pending", "c") });
  socket().deliver({ op: "run", topic: "runs", run: s(2, 6, "succeeded", "b") });
  assert.deepEqual(list.map((r) => [r.id, r.status]), [[3, "pending"], [2, "succeeded"], [1, "succeeded"]]);
  live.close();
});

test("applyEvent follows retries and progress", () => {
  const run = emptyRun(1);
  applyEvent(run, ev("run:1", 1, "step_failed", "x", { attempt: 1, error: { message: "boom" } }));
  applyEvent(run, ev("run:1", 2, "step_retrying", "x", { attempt: 2, error: { message: "boom" } }));
  assert.equal(run.steps.x.status, "pending");
  assert.equal(run.steps.x.attempt, 2);
  applyEvent(run, ev("run:1", 3, "step_progress", "x", { fraction: 0.5, message: "half" }));
  assert.deepEqual(run.steps.x.progress, { fraction: 0.5, message: "half" });
  applyEvent(run, ev("run:1", 4, "run_failed", "", { error: { message: "boom" } }));
  assert.equal(run.status, "failed");
});

test("a large value arrives as a reference with its size; the reducer keeps it and fetchValue reads it", async (t) => {
  const run = emptyRun(1);
  const ref = { $ref: "steps/7/output", bytes: 1_000_012 };
  applyEvent(run, ev("run:1", 1, "run_created", "", { input: { $ref: "input", bytes: 1_000_012 } }));
  applyEvent(run, ev("run:1", 2, "step_succeeded", "s", { attempt: 1, output: ref }));
  applyEvent(run, ev("run:1", 3, "run_succeeded", "", { output: { small: 1 } }));
  assert.deepEqual(valueRef(run.steps.s.output), ref);
  assert.equal(valueRef(run.input).$ref, "input");
  assert.equal(valueRef(run.output), null); // a small value is the value itself
  assert.equal(valueRef({ $ref: "x", bytes: 1, other: 2 }), null);
  assert.equal(fmtBytes(1_000_012), "1.0 MB");
  assert.equal(fmtBytes(812), "812 B");
  const asked = [];
  t.mock.method(globalThis, "fetch", async (url) => {
    asked.push(url);
    return url.endsWith("/nope") ? { ok: false, status: 404 } : { ok: true, json: async () => ({ value: { big: true }, bytes: 12 }) };
  });
  assert.deepEqual(await fetchValue("/api/runs/1/values/" + ref.$ref), { big: true });
  assert.deepEqual(asked, ["/api/runs/1/values/steps/7/output"]);
  await assert.rejects(fetchValue("/api/runs/1/values/nope"), /404/);
});

test("the default websocket URL is the page's data-live-url on the page's host, ws: or wss: as the page", () => {
  const page = (liveUrl) => ({ body: { dataset: liveUrl === undefined ? {} : { liveUrl } } });
  assert.equal(livePath(page("/wf/ws/")), "/wf/ws/");
  assert.equal(livePath(page(undefined)), undefined);
  assert.equal(defaultUrl({ href: "http://127.0.0.1:8000/wf/runs/3/" }, "/wf/ws/"), "ws://127.0.0.1:8000/wf/ws/");
  assert.equal(defaultUrl({ href: "https://example.com/ops/workflows/" }, "/ops/workflows/ws/"), "wss://example.com/ops/workflows/ws/");
  assert.equal(defaultUrl({ protocol: "http:", host: "localhost:9000" }, "/ws/"), "ws://localhost:9000/ws/");
  assert.equal(defaultUrl({ href: "https://a.example/" }, "wss://b.example/ws/"), "wss://b.example/ws/"); // a full URL as given
  assert.throws(() => defaultUrl({ href: "http://a.example/" }, undefined), /data-live-url/); // no silent guess
});

test("a client made without a URL connects to the page's data-live-url", (t) => {
  const saved = { document: globalThis.document, location: globalThis.location };
  globalThis.document = { body: { dataset: { liveUrl: "/prefix/ws/" } } };
  globalThis.location = { href: "https://example.com/prefix/runs/" };
  t.after(() => Object.assign(globalThis, saved));
  FakeSocket.all = [];
  const live = new LiveClient(undefined, { WebSocket: FakeSocket });
  t.after(() => live.close());
  assert.equal(live.url, "wss://example.com/prefix/ws/");
  assert.equal(FakeSocket.all.at(-1).url, "wss://example.com/prefix/ws/");
});

test("tokens frames build an agent's streamed text by offset; the step's final event replaces it", async (t) => {
  const { live, socket } = client(t);
  let state;
  watchRun(live, 5, (run) => (state = structuredClone(run)));
  socket().open();
  const tok = (offset, text, step = "answer/model#1") => ({ op: "tokens", topic: "run:5", step, text, offset });
  socket().deliver(ev("run:5", 1, "step_running", "answer/model#1", { attempt: 1, kind: "model" }));
  socket().deliver(tok(0, "Hello"));
  socket().deliver(tok(5, ", wor"));
  assert.equal(state.tokens["answer/model#1"], "Hello, wor");
  socket().deliver(tok(0, "Hello, world")); // the text so far (a subscribe mid-stream) overlaps what is held
  socket().deliver(tok(5, ", wor")); // a late, older batch changes nothing
  assert.equal(state.tokens["answer/model#1"], "Hello, world");
  socket().deliver(tok(40, "lost before")); // past the text held: a batch was lost; wait for the final message
  assert.equal(state.tokens["answer/model#1"], "Hello, world");
  socket().deliver(ev("run:5", 2, "step_succeeded", "answer/model#1", { attempt: 1, kind: "model" }));
  assert.deepEqual(state.tokens, {});
  socket().deliver(tok(12, "!")); // a batch arriving after the final message is ignored
  assert.deepEqual(state.tokens, {});
  assert.equal(state.lastSeq, 2);
});

test("applyTokens merges by offset and ignores ended requests", () => {
  const tokens = {};
  assert.equal(applyTokens(tokens, { step: "a", text: "ab", offset: 0 }), true);
  assert.equal(applyTokens(tokens, { step: "a", text: "cd", offset: 2 }), true);
  assert.equal(applyTokens(tokens, { step: "a", text: "bcdX", offset: 1 }), true);
  assert.equal(tokens.a, "abcdX");
  assert.equal(applyTokens(tokens, { step: "a", text: "more", offset: 5 }, "succeeded"), false);
  assert.equal(tokens.a, "abcdX");
});
