// Live updates for the dashboard: a client for the websocket protocol (README.md, "Live updates"). Plain ES module.
//
//   import { LiveClient, watchRun, watchRuns } from "./live.js";
//   const live = new LiveClient();                       // the page's data-live-url on this host, connects at once
//   const stop = watchRun(live, 42, (run, event) => render(run));          // one run, event by event
//   const stopList = watchRuns(live, "runs", (runs) => renderList(runs));  // or "workflow:<name>"
//   live.onStatus((status) => badge(status));            // "connecting" | "open" | "closed"
//
// The client keeps the last seq of every run topic; after a reconnect (with backoff) or a server "resync" it
// subscribes again from that seq, so each event is applied exactly once and in order. It acknowledges the
// frames it receives (flow control) and pings the server to notice a dead connection.

const RUN_STATUSES = new Set(["pending", "running", "waiting", "suspended", "succeeded", "failed", "canceled"]);
const STEP_STATUSES = new Set([...RUN_STATUSES, "queued", "skipped"]);
const FATAL_ERRORS = new Set(["not_found", "unknown_topic", "too_many_subscriptions", "bad_request"]);

/**
 * The websocket's path as the page gives it: <body data-live-url>, which the dashboard's base.html renders from
 * wherever the project mounted the dashboard (its prefix + "ws/"); undefined on a page without it.
 */
export function livePath(doc = globalThis.document) {
  return doc?.body?.dataset?.liveUrl || undefined;
}

/** The websocket URL of `path` (default: the page's) on this page's host: ws: for http:, wss: for https:. */
export function defaultUrl(location = globalThis.location, path = livePath()) {
  if (!path) throw new Error("live updates: this page gives no websocket URL (<body data-live-url>, see workflows/base.html)");
  const url = new URL(path, location.href ?? `${location.protocol}//${location.host}/`);
  if (url.protocol === "https:") url.protocol = "wss:";
  else if (url.protocol === "http:") url.protocol = "ws:";
  return url.href;
}

export class LiveClient {
  /**
   * @param {string} url  the websocket URL (default: defaultUrl(), the page's data-live-url on this page's host)
   * @param {object} options  backoff {initial, max} in ms, ackEvery (frames), ackDelay (ms),
   *   pingInterval and pingTimeout (ms), WebSocket (a constructor, for tests)
   */
  constructor(url = defaultUrl(), options = {}) {
    this.url = url;
    this.options = {
      backoff: { initial: 500, max: 15000 },
      ackEvery: 32,
      ackDelay: 50,
      pingInterval: 20000,
      pingTimeout: 10000,
      WebSocket: globalThis.WebSocket,
      ...options,
    };
    this.subs = new Map(); // topic -> {topic, last, handlers}
    this.statusListeners = new Set();
    this.status = "closed";
    this.attempts = 0;
    this.closed = false;
    this.nextId = 1;
    this.connect();
  }

  /** Subscribe to "run:<id>", "workflow:<name>" or "runs". Returns {unsubscribe(), lastSeq}. */
  subscribe(topic, handlers = {}, { since = 0 } = {}) {
    const existing = this.subs.get(topic);
    if (existing) {
      existing.handlers = handlers; // one subscription per topic and connection: the newest handlers win
      return this._handle(existing);
    }
    const sub = { topic, last: since, handlers };
    this.subs.set(topic, sub);
    this._sendSubscribe(sub);
    return this._handle(sub);
  }

  /** Listen to the connection status; returns a function that stops listening. */
  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => this.statusListeners.delete(fn);
  }

  close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.ackTimer);
    if (this.ws) this.ws.close(1000);
    this._setStatus("closed");
  }

  // --- connection -----------------------------------------------------------------------------------------

  connect() {
    if (this.closed) return;
    this._setStatus("connecting");
    const ws = new this.options.WebSocket(this.url);
    this.ws = ws;
    this.received = 0;
    this.acked = 0;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.attempts = 0;
      this.lastFrameAt = Date.now();
      this._setStatus("open");
      for (const sub of this.subs.values()) {
        sub.resubscribing = true; // until "subscribed": the new stream starts after sub.last
        this._sendSubscribe(sub);
      }
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this._ping(), this.options.pingInterval);
    };
    ws.onmessage = (message) => {
      if (ws !== this.ws) return;
      this.received += 1;
      this.lastFrameAt = Date.now();
      this._scheduleAck();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this._dispatch(frame);
    };
    ws.onclose = () => {
      if (ws !== this.ws) return;
      clearInterval(this.pingTimer);
      clearTimeout(this.ackTimer);
      this.ackTimer = null;
      this._setStatus("closed");
      this._reconnectLater();
    };
    ws.onerror = () => {}; // onclose follows
  }

  _reconnectLater() {
    if (this.closed) return;
    const { initial, max } = this.options.backoff;
    const delay = Math.min(max, initial * 2 ** this.attempts) * (0.5 + Math.random() / 2); // jittered
    this.attempts += 1;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  _ping() {
    if (Date.now() - this.lastFrameAt > this.options.pingInterval + this.options.pingTimeout) {
      this.ws.close(4000); // silent for too long: a dead connection; onclose reconnects
      return;
    }
    this._send({ op: "ping" });
  }

  _scheduleAck() {
    if (this.received - this.acked >= this.options.ackEvery) return this._ack();
    if (!this.ackTimer) this.ackTimer = setTimeout(() => this._ack(), this.options.ackDelay);
  }

  _ack() {
    clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.received > this.acked) {
      this.acked = this.received;
      this._send({ op: "ack", n: this.received });
    }
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  _resubscribe(sub) {
    if (sub.resubscribing) return; // frames of the old stream still arrive until "subscribed"
    sub.resubscribing = true;
    this._sendSubscribe(sub);
  }

  _sendSubscribe(sub) {
    if (!this.ws || this.ws.readyState !== 1) return; // sent on open
    const frame = { op: "subscribe", topic: sub.topic, id: this.nextId++ };
    if (sub.topic.startsWith("run:")) frame.since = sub.last;
    this._send(frame);
  }

  _setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    for (const fn of this.statusListeners) fn(status);
  }

  _handle(sub) {
    return {
      unsubscribe: () => {
        if (this.subs.get(sub.topic) !== sub) return;
        this.subs.delete(sub.topic);
        this._send({ op: "unsubscribe", topic: sub.topic });
      },
      get lastSeq() {
        return sub.last;
      },
    };
  }

  // --- frames in --------------------------------------------------------------------------------------------

  _dispatch(frame) {
    const sub = frame.topic !== undefined ? this.subs.get(frame.topic) : undefined;
    const h = sub ? sub.handlers : {};
    switch (frame.op) {
      case "event":
        if (!sub || frame.seq <= sub.last) return; // a duplicate: already applied
        if (frame.seq !== sub.last + 1) return this._resubscribe(sub); // never apply out of order
        sub.last = frame.seq;
        h.onEvent?.(frame);
        return;
      case "tokens": // an agent's streamed text: not in the journal, merged by offset (applyTokens)
        h.onTokens?.(frame);
        return;
      case "snapshot":
        h.onSnapshot?.(frame.runs);
        return;
      case "run":
        h.onRun?.(frame.run);
        return;
      case "subscribed":
        if (sub) sub.resubscribing = false;
        h.onSubscribed?.(frame);
        return;
      case "resync": // the server dropped what it could not send: ask again from what we have
        if (sub) this._resubscribe(sub);
        return;
      case "error":
        if (sub && FATAL_ERRORS.has(frame.code)) this.subs.delete(frame.topic);
        else if (sub) setTimeout(() => this.subs.get(sub.topic) === sub && this._sendSubscribe(sub), this.options.backoff.initial);
        if (h.onError) h.onError(frame);
        else console.warn("live updates:", frame.code, frame.message);
        return;
      default: // pong, unsubscribed
    }
  }
}

// --- values stored once ---------------------------------------------------------------------------------------

/**
 * A large value in an event or a step (over the server's INLINE_VALUE_BYTES) is sent as `{"$ref": where,
 * "bytes": n}` instead of the value: `valueRef(v)` returns that reference (null for a value). Fetch the value
 * on demand with `fetchValue(base + ref.$ref)`, `base` being the run's values URL (the run page's
 * `urls.value`).
 */
export function valueRef(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  return keys.length === 2 && typeof value.$ref === "string" && typeof value.bytes === "number" ? value : null;
}

/** Bytes for people: "812 B", "1.0 MB" (powers of 1,000). */
export function fmtBytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB"];
  let i = -1;
  do {
    n /= 1000;
    i += 1;
  } while (n >= 1000 && i < units.length - 1);
  return `${n.toFixed(1)} ${units[i]}`;
}

/** The value at a values URL (login and the run's permission apply: a 404 for a run the user may not see). */
export async function fetchValue(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status} fetching ${url}`);
  return (await response.json()).value;
}

// --- applying events -------------------------------------------------------------------------------------------

/** A fresh run state for applyEvent. */
export function emptyRun(id) {
  return { id, status: null, input: null, output: null, error: null, steps: {}, logs: [], lastSeq: 0, tokens: {} };
}

const ENDED_STEPS = new Set(["succeeded", "failed", "canceled"]);

/**
 * Merge a "tokens" frame (an agent's model request streaming: `step`, `text` from `offset`) into `tokens`, an
 * object of the text so far by step path; `status` is that step's status if known. A frame for a request that
 * ended is ignored (its journal event carries the final message); one past the text held (a lost batch) too.
 * Returns true if the text changed.
 */
export function applyTokens(tokens, frame, status = null) {
  if (ENDED_STEPS.has(status)) return false;
  const known = tokens[frame.step] ?? "";
  const end = frame.offset + frame.text.length;
  if (frame.offset > known.length || end <= known.length) return false;
  tokens[frame.step] = known.slice(0, frame.offset) + frame.text;
  return true;
}

/** Apply one event (a frame of a run topic) to a run state, in place; returns the state. */
export function applyEvent(run, event) {
  const { kind, step, data = {} } = event;
  run.lastSeq = event.seq;
  if (kind === "run_created") run.input = data.input ?? null;
  if (kind.startsWith("run_")) {
    const status = kind.slice(4);
    if (RUN_STATUSES.has(status)) run.status = status;
    else if (status === "started") run.status = "running";
    else if (status === "created") run.status = run.status ?? "pending";
    if (status === "succeeded") run.output = data.output ?? null;
    if (status === "failed") run.error = data.error ?? null;
    return run;
  }
  if (!step) return run;
  const s = (run.steps[step] ??= { path: step, status: null, attempt: 1, output: null, error: null, progress: null });
  if (data.attempt !== undefined) s.attempt = data.attempt;
  const status = kind.startsWith("step_") ? kind.slice(5) : null;
  if (STEP_STATUSES.has(status)) {
    s.status = status;
    if (ENDED_STEPS.has(status)) delete run.tokens[step]; // the final message replaces the streamed text
    if (status === "succeeded") s.output = data.output ?? null;
    if (status === "failed") s.error = data.error ?? null;
  } else if (status === "retrying") {
    s.status = "pending";
    s.error = data.error ?? s.error;
  } else if (status === "progress") {
    s.progress = { fraction: data.fraction, message: data.message ?? "" };
  } else if (status === "log") {
    run.logs.push({ step, message: data.message, at: event.at, seq: event.seq });
  }
  return run;
}

/** Keep the state of one run up to date: onChange(state, event) after every event. Returns a stop function. */
export function watchRun(live, runId, onChange, { onError } = {}) {
  const run = emptyRun(runId);
  const sub = live.subscribe(`run:${runId}`, {
    onEvent: (event) => onChange(applyEvent(run, event), event),
    onTokens: (frame) => {
      if (applyTokens(run.tokens, frame, run.steps[frame.step]?.status)) onChange(run, frame);
    },
    onError,
  });
  return () => sub.unsubscribe();
}

/**
 * Keep a list of run summaries ("runs" or "workflow:<name>") up to date: onChange(runs) with the runs newest
 * first, after the snapshot and after every change. A summary older (by seq) than the one held is ignored.
 */
export function watchRuns(live, topic, onChange, { onError } = {}) {
  const runs = new Map();
  const put = (summary) => {
    const held = runs.get(summary.id);
    if (held && held.seq >= summary.seq) return false;
    runs.set(summary.id, summary);
    return true;
  };
  const emit = () =>
    onChange([...runs.values()].sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? "") || b.id - a.id));
  const sub = live.subscribe(topic, {
    onSnapshot: (list) => {
      list.forEach(put);
      emit();
    },
    onRun: (summary) => {
      if (put(summary)) emit();
    },
    onError,
  });
  return () => sub.unsubscribe();
}
