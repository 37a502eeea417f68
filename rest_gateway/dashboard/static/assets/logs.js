// The server's recent log records (GetLogs, GET /api/logs): level and store on the server, logger and text
// filters here (GetLogs has none), newest first.

import { api, query } from "./api.js";
import { $, el, time } from "./dom.js";

const SHOWN = 300;

export class LogsView {
  constructor() {
    this.form = $("#logs-form");
    this.store = $("#logs-store");
    this.body = $("#logs-table tbody");
    this.error = $("#logs-error");
    this.count = $("#logs-count");
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.load();
    });
  }

  async loadStores() {
    try {
      const reply = await api(`/api/logs${query({ getAllStores: true })}`);
      const stores = reply.stores ?? [];
      if (stores.length) {
        this.store.replaceChildren(...stores.map((s) => el("option", { value: s }, s)));
        if (stores.includes("iris")) this.store.value = "iris";
      }
    } catch {
      /* load() reports the error */
    }
  }

  async load() {
    const levels = [...this.form.querySelectorAll('input[name="level"]:checked')].map((i) => i.value);
    try {
      const reply = await api(`/api/logs${query({ level: levels, storeName: this.store.value, format: "parsed" })}`);
      const logger = $("#logs-logger").value.trim().toLowerCase();
      const text = $("#logs-text").value.trim().toLowerCase();
      const records = (reply.logs ?? [])
        .filter((r) => !logger || (r.logger ?? "").toLowerCase().includes(logger))
        .filter((r) => !text || `${r.msg ?? ""} ${r.text ?? ""}`.toLowerCase().includes(text))
        .reverse();
      this.body.replaceChildren(
        ...records.slice(0, SHOWN).map((r) =>
          el("tr", { className: `level-${r.level}` }, el("td", { className: "when" }, time(r.time)),
            el("td", {}, el("span", { className: `badge level-${r.level}` }, r.level)),
            el("td", { className: "mono" }, r.logger ?? ""), el("td", { className: "msg" }, r.msg || r.text || "")),
        ),
      );
      this.count.textContent = `${Math.min(records.length, SHOWN)} of ${records.length} matching records (${reply.count ?? 0} fetched)`;
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = `Logs: ${error.summary ?? error.message}`;
    }
  }
}
