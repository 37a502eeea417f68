// The event stream (GET /api/v1/events) read with fetch(): EventSource cannot send an Authorization header,
// and the key must not go into a URL. Reconnects resume with Last-Event-ID, so no event is missed or repeated.

import { authHeaders } from "./api.js";

/** Return a function that takes text as it arrives and calls onEvent({id, event, data}) per complete event. */
export function sseParser(onEvent) {
  let buffer = "";
  let id = "";
  let event = "";
  let data = [];
  return (text) => {
    buffer += text;
    let end;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
      if (line === "") {
        if (data.length) onEvent({ id, event: event || "message", data: data.join("\n") });
        event = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id") id = value;
    }
  };
}

/**
 * Follow /api/v1/events until stopped. On the first connection it asks for every kept event (afterId=1), so a
 * page opened mid-turn or with a permission request waiting shows them; after a drop it resumes from the last
 * id it saw. onState(state, detail) is told "connecting", "live", "retrying" or "denied".
 */
export class EventStream {
  constructor({ onEvent, onState, replay = true }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = replay ? "1" : "";
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  async loop() {
    let backoff = 500;
    while (!this.stopped) {
      this.controller = new AbortController();
      this.onState("connecting");
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (this.lastId) headers["Last-Event-ID"] = this.lastId;
        const response = await fetch("/api/v1/events", {
          headers,
          signal: this.controller.signal,
          cache: "no-store",
          credentials: "omit",
        });
        if (response.status === 401 || response.status === 403) {
          let message = `HTTP ${response.status}`;
          try {
            message = (await response.json()).message ?? message;
          } catch {
            /* the status says enough */
          }
          this.onState("denied", message);
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.onState("live");
        backoff = 500;
        const feed = sseParser((raw) => {
          if (raw.id) this.lastId = raw.id;
          let data;
          try {
            data = JSON.parse(raw.data);
          } catch {
            return;
          }
          if (raw.event === "error") this.onState("retrying", data.message ?? "stream error");
          else this.onEvent(data);
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feed(value);
        }
      } catch (error) {
        if (this.stopped) return;
        this.onState("retrying", String(error.message ?? error));
      }
      if (this.stopped) return;
      // A reconnection delay (growing, bounded), not a wait for something to happen.
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }
}
