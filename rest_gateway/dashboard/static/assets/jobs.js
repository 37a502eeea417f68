// Jobs (Execute, and messages sent with persist) and their webhook deliveries: ListMessages for the table,
// GetMessage for one job's deliveries. ListMessages leaves deliveries out, so the table's webhook column
// comes from the webhook.* events (replayed on load); the details ask GetMessage for the full record.

import { api, query } from "./api.js";
import { $, el, time, usd, throttled } from "./dom.js";

export class JobsView {
  constructor() {
    this.body = $("#jobs-table tbody");
    this.error = $("#jobs-error");
    this.empty = $("#jobs-empty");
    this.only = $("#jobs-only");
    this.detail = $("#job-detail");
    this.open = "";
    this.hooks = new Map(); // messageId -> {attempt, delivered, statusCode} of its latest webhook event
    this.refresh = throttled(() => this.load(), 2000);
    this.only.addEventListener("change", () => this.load());
    $("#jobs-refresh").addEventListener("click", () => this.load());
  }

  onEvent(event) {
    const kind = event.kind ?? "";
    if (kind.startsWith("webhook.") && event.messageId) {
      const seen = this.hooks.get(event.messageId);
      if (!seen || (event.attempt ?? 0) >= seen.attempt) {
        this.hooks.set(event.messageId, {
          attempt: event.attempt ?? 0,
          delivered: kind === "webhook.delivered",
          statusCode: event.statusCode ?? 0,
        });
      }
    }
    if (kind.startsWith("job.") || kind.startsWith("webhook.") || kind === "turn.completed") {
      this.refresh();
      if (this.open && (event.messageId === this.open || kind.startsWith("webhook."))) this.show(this.open, false);
    }
  }

  async load() {
    try {
      const reply = await api(`/api/v1/messages/history${query({ limit: 50 })}`);
      let messages = reply.messages ?? [];
      if (this.only.checked) messages = messages.filter((m) => m.jobId);
      this.body.replaceChildren(...messages.map((m) => this.row(m)));
      this.empty.hidden = messages.length > 0;
      this.empty.textContent = this.only.checked ? "No jobs yet." : "No messages yet.";
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = `Jobs: ${error.summary ?? error.message}`;
    }
  }

  row(m) {
    const button = el("button", { type: "button", className: "small", textContent: "Deliveries" });
    button.setAttribute("aria-label", `Details and deliveries of ${m.jobId || m.messageId}`);
    button.addEventListener("click", () => this.show(m.messageId, true));
    const hook = this.hooks.get(m.messageId);
    const webhook = hook
      ? hook.delivered
        ? `delivered (${hook.attempt})`
        : `attempt ${hook.attempt} failed${hook.statusCode ? ` (HTTP ${hook.statusCode})` : ""}`
      : m.webhookStatus || "—";
    return el(
      "tr",
      { dataset: { messageId: m.messageId, status: m.status } },
      el("td", {}, time(m.createdAt)),
      el("td", {}, m.team),
      el("td", {}, m.fromTeam ?? m.from ?? ""),
      el("td", {}, el("span", { className: `badge ${m.status}` }, m.status),
        m.priority && m.priority !== "normal" ? el("span", { className: "tag" }, m.priority) : null),
      el("td", {}, webhook),
      el("td", {}, usd(m.metadata?.costUsd)),
      el("td", {}, button),
    );
  }

  async show(messageId, focus) {
    this.open = messageId;
    try {
      const m = await api(`/api/v1/messages/${encodeURIComponent(messageId)}`);
      const deliveries = m.deliveries ?? [];
      const table = deliveries.length
        ? el(
            "table",
            { className: "compact" },
            el("caption", {}, "Webhook deliveries"),
            el("thead", {}, el("tr", {}, ...["#", "At", "HTTP", "Delivered", "Took", "Error"].map((h) => el("th", { scope: "col" }, h)))),
            el(
              "tbody",
              {},
              ...deliveries.map((d) =>
                el("tr", {}, el("td", {}, String(d.attempt)), el("td", {}, time(d.at)),
                  el("td", {}, d.statusCode ? String(d.statusCode) : "no answer"),
                  el("td", {}, d.delivered ? "yes" : "no"), el("td", {}, `${d.duration ?? 0} ms`),
                  el("td", {}, d.error || "")),
              ),
            ),
          )
        : el("p", { className: "hint" }, m.jobId ? "No delivery attempts (yet, or no callback)." : "Not a job: no callback.");
      const close = el("button", { type: "button", className: "small", textContent: "Close" });
      close.addEventListener("click", () => {
        this.open = "";
        this.detail.hidden = true;
      });
      const answer = (m.response ?? "").slice(0, 400);
      this.detail.replaceChildren(
        ...[
          el("h3", {}, `${m.jobId || m.messageId} · ${m.team} · ${m.status}`, " ", close),
          el("p", { className: "hint" }, `Task: ${m.message ?? ""}`),
          answer ? el("p", { className: "hint" }, `Answer: ${answer}`) : null,
          m.error ? el("p", { className: "error" }, m.error) : null,
          table,
        ].filter(Boolean),
      );
      this.detail.hidden = false;
      if (focus) this.detail.focus();
    } catch (error) {
      this.error.textContent = `Message ${messageId}: ${error.summary ?? error.message}`;
    }
  }
}
