// Pending permission requests of teams with grantPermission "ask", answered with PermissionsApprove. A
// request leaves the list when it is decided (by anyone) or when its turn ends (a request that timed out
// was denied by Iris, which sends no event for it).

import { api } from "./api.js";
import { $, el, time } from "./dom.js";

export class PermissionsView {
  constructor({ onDecided }) {
    this.list = $("#permission-list");
    this.empty = $("#permissions-empty");
    this.announce = $("#permissions-announce");
    this.pending = new Map(); // requestId -> {event, node}
    this.onDecided = onDecided;
  }

  onEvent(event) {
    if (event.kind === "permission.requested") this.add(event);
    else if (event.kind === "permission.decided") this.remove(event.requestId, event.decision);
    else if (event.kind === "turn.completed") {
      for (const [id, item] of this.pending) if (item.event.messageId === event.messageId) this.remove(id);
    }
  }

  add(event) {
    if (this.pending.has(event.requestId)) return;
    const who = `${event.team} (for ${event.fromTeam})`;
    const allow = el("button", { type: "button", className: "allow", textContent: "Allow" });
    const deny = el("button", { type: "button", className: "deny", textContent: "Deny" });
    allow.setAttribute("aria-label", `Allow ${event.tool} for ${who}`);
    deny.setAttribute("aria-label", `Deny ${event.tool} for ${who}`);
    const error = el("p", { className: "error", role: "alert" });
    const node = el(
      "li",
      { className: "permission", dataset: { requestId: event.requestId, team: event.team ?? "" } },
      el("p", {}, el("strong", {}, event.team), ` wants to use `, el("strong", { className: "tool" }, event.tool),
        el("span", { className: "when" }, ` ${time(event.timestamp)} · asked by ${event.fromTeam}`)),
      el("pre", { className: "input" }, visible(JSON.stringify(event.toolInput ?? {}, null, 2))),
      el("div", { className: "buttons" }, allow, deny),
      error,
    );
    const decide = async (decision) => {
      allow.disabled = deny.disabled = true;
      try {
        const reply = await api("/api/permissions/approve", {
          method: "POST",
          body: { requestId: event.requestId, decision, fromTeam: event.fromTeam },
        });
        if (reply?.behavior && reply.behavior !== decision) error.textContent = reply.message || reply.behavior;
        this.remove(event.requestId, decision);
      } catch (failure) {
        error.textContent = failure.summary ?? failure.message;
        allow.disabled = deny.disabled = false;
      }
    };
    allow.addEventListener("click", () => decide("allow"));
    deny.addEventListener("click", () => decide("deny"));
    this.pending.set(event.requestId, { event, node });
    this.list.append(node);
    this.empty.hidden = true;
    this.announce.textContent = `Permission requested: ${event.team} wants to use ${event.tool}`;
  }

  remove(requestId, decision) {
    const item = this.pending.get(requestId);
    if (!item) return;
    const hadFocus = item.node.contains(document.activeElement);
    item.node.remove();
    this.pending.delete(requestId);
    if (decision) this.onDecided(item.event.messageId, item.event.tool, decision);
    this.empty.hidden = this.pending.size > 0;
    if (hadFocus) (this.list.querySelector("button.allow") ?? $("#permissions-title")).focus?.();
  }
}

/**
 * The text of a tool's input with what could hide part of it made visible: a run of spaces or tabs is
 * counted ("⟨400 blanks⟩", after the first character of a line, so JSON's indentation stays), so a command cannot push its dangerous tail out of the operator's sight.
 */
function visible(text) {
  return text.replace(/(?<=\S)[ \t]{8,}/g, (run) => ` ⟨${run.length} blanks⟩ `);
}
