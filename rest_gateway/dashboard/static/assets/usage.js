// Cost per team or per API key, per day, from GetUsage (GET /api/v1/usage). A server without that route
// answers 404, and the view says so rather than showing an empty chart.

import { ApiError, api, query } from "./api.js";
import { stackedBars } from "./chart.js";
import { $, el, usd, throttled } from "./dom.js";

const DAY_MS = 86400000;

export class UsageView {
  constructor() {
    this.form = $("#usage-form");
    this.range = $("#usage-range");
    this.by = $("#usage-by");
    this.chart = $("#usage-chart");
    this.body = $("#usage-table tbody");
    this.error = $("#usage-error");
    this.total = $("#usage-total");
    this.head = $("#usage-group-head");
    this.refresh = throttled(() => this.load(), 3000);
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.load();
    });
    this.by.addEventListener("change", () => this.load());
    this.range.addEventListener("change", () => this.load());
  }

  onEvent(event) {
    if (event.kind === "turn.completed") this.refresh();
  }

  async load() {
    const by = this.by.value;
    const since = Date.now() - Number(this.range.value) * DAY_MS;
    let reply;
    try {
      reply = await api(`/api/v1/usage${query({ since, groupBy: [by, "day"] })}`);
    } catch (error) {
      this.chart.replaceChildren();
      this.body.replaceChildren();
      this.total.textContent = "";
      this.error.textContent =
        error instanceof ApiError && error.status === 404
          ? "Usage not available: this server has no GET /api/v1/usage (GetUsage)."
          : `Usage: ${error.summary ?? error.message}`;
      this.chart.dataset.state = "unavailable";
      return;
    }
    this.error.textContent = "";
    this.chart.dataset.state = "ok";
    const rows = reply.rows ?? [];
    const name = (row) => (by === "key" ? row.key : row.team) || "(none)";
    const days = [...new Set(rows.map((r) => r.day ?? ""))].sort();
    const groups = new Map();
    for (const row of rows) {
      const group = groups.get(name(row)) ?? { name: name(row), values: days.map(() => 0), turns: 0, cost: 0, input: 0, output: 0 };
      group.values[days.indexOf(row.day ?? "")] += Number(row.costUsd ?? 0);
      group.turns += Number(row.turns ?? 0);
      group.cost += Number(row.costUsd ?? 0);
      group.input += Number(row.usage?.inputTokens ?? 0);
      group.output += Number(row.usage?.outputTokens ?? 0);
      groups.set(group.name, group);
    }
    const series = [...groups.values()].sort((a, b) => b.cost - a.cost);
    this.head.textContent = by === "key" ? "Key" : "Team";
    this.total.textContent = `Total ${usd(reply.total?.costUsd)} over ${reply.total?.turns ?? 0} turns`;
    this.chart.replaceChildren(
      rows.length
        ? stackedBars({ days, series, format: usd, title: `Cost per day by ${by}` })
        : el("p", { className: "empty" }, "No turns in this range."),
    );
    this.body.replaceChildren(
      ...series.map((s) =>
        el("tr", { dataset: { group: s.name } }, el("th", { scope: "row" }, s.name), el("td", {}, String(s.turns)),
          el("td", { className: "cost" }, usd(s.cost)), el("td", {}, String(s.input)), el("td", {}, String(s.output))),
      ),
    );
  }
}
