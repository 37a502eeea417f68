// Teams and their processes. TeamStatus describes one calling team's pairs, so the view asks it once for the
// key's own pairs and once per calling team the events or the history have shown (an admin key may ask as
// any team); a row per pair that has a process or a session, and one per team for the key's own pairs.

import { api, query } from "./api.js";
import { $, ago, bytes, el, throttled } from "./dom.js";

const OWN = ""; // the key's own calling team (its name)

export class TeamsView {
  constructor() {
    this.teams = [];
    this.callers = new Set([OWN]);
    this.ownName = "";
    this.status = new Map(); // caller -> [TeamStatusEntry]
    this.body = $("#teams-table tbody");
    this.error = $("#teams-error");
    this.refresh = throttled(() => this.load(), 1500);
    $("#teams-refresh").addEventListener("click", () => this.load(true));
  }

  /** A calling team seen somewhere: its pairs get rows too. */
  noteCaller(name) {
    if (this.noteCallerIsNew(name)) {
      this.callers.add(name);
      this.refresh();
    }
  }

  onEvent(event) {
    if (event.kind?.startsWith("process.") || event.kind === "turn.started" || event.kind === "turn.completed") {
      this.noteCaller(event.fromTeam);
      this.refresh();
    }
  }

  async load(listTeams = false) {
    try {
      if (listTeams || this.teams.length === 0) this.teams = (await api("/api/teams")).teams ?? [];
      const callers = [...this.callers];
      const replies = await Promise.all(
        callers.map((caller) => api(`/api/teams/status${query({ fromTeam: caller })}`).catch((error) => error)),
      );
      const failures = [];
      replies.forEach((reply, i) => {
        if (reply instanceof Error) failures.push(`${callers[i] || "own pairs"}: ${reply.summary ?? reply.message}`);
        else this.status.set(callers[i], reply.teams ?? []);
      });
      this.findOwnName();
      this.error.textContent = failures.join("; ");
      this.render();
    } catch (error) {
      this.error.textContent = `Teams: ${error.summary ?? error.message}`;
    }
  }

  /**
   * The key calls as its own name (an admin key as "admin"), which the events show as a calling team: a
   * caller whose pairs have the same sessions as the key's own is the key itself, and is shown once.
   */
  findOwnName() {
    const own = this.status.get(OWN) ?? [];
    for (const [caller, entries] of this.status) {
      if (caller === OWN) continue;
      const same = entries.some((e) => e.sessionId && own.some((o) => o.name === e.name && o.sessionId === e.sessionId));
      if (same) {
        this.ownName = caller;
        this.callers.delete(caller);
        this.status.delete(caller);
      }
    }
  }

  noteCallerIsNew(name) {
    return name && name !== this.ownName && !this.callers.has(name);
  }

  render() {
    const rows = [];
    for (const team of this.teams) {
      for (const [caller, entries] of this.status) {
        const entry = entries.find((e) => e.name === team.name);
        if (!entry) continue;
        if (caller !== OWN && !entry.awake && !entry.sessionId) continue;
        rows.push(this.row(team, caller, entry));
      }
    }
    this.body.replaceChildren(...rows);
  }

  row(team, caller, entry) {
    const awake = Boolean(entry.awake);
    const label = `${team.name} (${caller || "this key"})`;
    const wake = el("button", { type: "button", className: "small", textContent: "Wake" });
    const sleep = el("button", { type: "button", className: "small", textContent: "Sleep" });
    wake.setAttribute("aria-label", `Wake ${label}`);
    sleep.setAttribute("aria-label", `Put ${label} to sleep`);
    wake.disabled = awake;
    sleep.disabled = !awake;
    wake.addEventListener("click", () => this.act(team.name, caller, "wake", wake));
    sleep.addEventListener("click", () => this.act(team.name, caller, "sleep", sleep));
    const queue = entry.notifications;
    const swatch = el("span", { className: "swatch", "aria-hidden": "true" });
    if (team.color) swatch.style.background = team.color;
    return el(
      "tr",
      { dataset: { team: team.name, caller: caller || "self", awake: String(awake) } },
      el("th", { scope: "row", title: team.description || team.path }, swatch, team.name,
        team.grantPermission === "ask" ? el("span", { className: "tag", title: "grantPermission: ask" }, "ask") : null),
      el("td", {}, caller || el("em", {}, this.ownName ? `${this.ownName} (this key)` : "this key")),
      el("td", {}, el("span", { className: `badge ${awake ? "awake" : "asleep"}` }, awake ? "awake" : "asleep")),
      el("td", { className: "state" }, entry.state || "stopped"),
      el("td", { className: "pid" }, entry.pid ? String(entry.pid) : "—"),
      el("td", { className: "memory" }, bytes(entry.memoryBytes)),
      el("td", { className: "mono", title: entry.sessionId || "" }, entry.sessionId ? entry.sessionId.slice(0, 8) : "—"),
      el("td", {}, String(entry.messageCount ?? 0)),
      el("td", { title: entry.lastUsed ? new Date(Number(entry.lastUsed)).toISOString() : "" }, ago(entry.lastUsed)),
      el("td", {}, queue ? `${queue.running ?? 0} running, ${queue.pending ?? 0} waiting` : "—"),
      el("td", { className: "actions" }, wake, sleep),
    );
  }

  async act(team, caller, verb, button) {
    button.disabled = true;
    try {
      await api(`/api/teams/${encodeURIComponent(team)}/${verb}`, {
        method: "POST",
        body: caller ? { fromTeam: caller } : {},
      });
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = `${verb} ${team}: ${error.summary ?? error.message}`;
    }
    await this.load();
  }
}
