// Turns as they stream: turn.started opens a card, turn.chunk appends its text, turn.tool_use and the
// permission events add lines, turn.completed closes it. Only the newest MAX_TURNS cards are kept.

import { $, el, time } from "./dom.js";

const MAX_TURNS = 30;
const MAX_TEXT = 20000; // characters of answer kept per card

export class TurnsView {
  constructor() {
    this.list = $("#turn-list");
    this.empty = $("#turns-empty");
    this.follow = $("#turns-follow");
    this.cards = new Map(); // messageId -> {node, text, lines, status}
  }

  card(event) {
    let card = this.cards.get(event.messageId);
    if (card) return card;
    const status = el("span", { className: "badge running" }, "running");
    const text = el("p", { className: "answer" });
    const lines = el("ul", { className: "turn-lines" });
    const node = el(
      "li",
      { className: "turn", dataset: { messageId: event.messageId, team: event.team ?? "" } },
      el(
        "div",
        { className: "turn-head" },
        el("h3", {}, `${event.team || "?"} `, el("span", { className: "from" }, `← ${event.fromTeam || "?"}`)),
        status,
        el("span", { className: "when" }, time(event.timestamp)),
        el("span", { className: "mono id", title: event.messageId }, event.messageId),
      ),
      text,
      lines,
    );
    card = { node, text, lines, status };
    this.cards.set(event.messageId, card);
    this.list.prepend(node);
    this.empty.hidden = true;
    while (this.cards.size > MAX_TURNS) {
      const [oldest, dropped] = this.cards.entries().next().value;
      dropped.node.remove();
      this.cards.delete(oldest);
    }
    if (this.follow.checked) this.list.scrollTop = 0;
    return card;
  }

  line(card, className, ...content) {
    card.lines.append(el("li", { className }, ...content));
  }

  onEvent(event) {
    if (!event.messageId) return;
    switch (event.kind) {
      case "turn.started":
        this.card(event);
        break;
      case "turn.chunk": {
        const card = this.card(event);
        if (card.text.textContent.length < MAX_TEXT) card.text.append(event.text ?? "");
        break;
      }
      case "turn.tool_use":
        this.line(this.card(event), "tool", el("strong", {}, `tool ${event.tool}`), " ",
          el("code", {}, JSON.stringify(event.toolInput ?? {})));
        break;
      case "permission.requested":
        this.line(this.card(event), "asks", `asks permission for ${event.tool}`);
        break;
      case "turn.completed": {
        const card = this.card(event);
        const status = event.status || "completed";
        card.status.textContent = status;
        card.status.className = `badge ${status}`;
        card.node.dataset.status = status;
        if (event.error) this.line(card, "failure", event.error);
        break;
      }
      default:
    }
  }

  /** permission.decided names only the request: the permissions view tells which turn it was. */
  decided(messageId, tool, decision) {
    const card = this.cards.get(messageId);
    if (card) this.line(card, `permission ${decision}`, `${tool}: ${decision === "allow" ? "allowed" : "denied"}`);
  }
}
