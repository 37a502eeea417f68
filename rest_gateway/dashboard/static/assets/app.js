// The dashboard's wiring: sign in, follow the event stream, hand every event to the views.

import { ApiError, api, onRateLimit, session } from "./api.js";
import { $ } from "./dom.js";
import { EventStream } from "./events.js";
import { JobsView } from "./jobs.js";
import { LogsView } from "./logs.js";
import { PermissionsView } from "./permissions.js";
import { TeamsView } from "./teams.js";
import { TurnsView } from "./turns.js";
import { UsageView } from "./usage.js";

const connection = $("#connection");
let stream = null;
let views = null;

function setConnection(state, detail = "") {
  const text = {
    out: "Signed out",
    connecting: "Connecting to events…",
    live: "Live",
    retrying: "Events interrupted, reconnecting…",
    denied: "Events refused",
  }[state];
  connection.dataset.state = state;
  connection.textContent = detail ? `${text} (${detail})` : text;
}

onRateLimit((remaining, limit) => {
  $("#rate").textContent = `API calls left: ${remaining}${limit ? ` / ${limit}` : ""}`;
});

function makeViews() {
  const turns = new TurnsView();
  return {
    teams: new TeamsView(),
    turns,
    permissions: new PermissionsView({ onDecided: (id, tool, decision) => turns.decided(id, tool, decision) }),
    jobs: new JobsView(),
    usage: new UsageView(),
    logs: new LogsView(),
  };
}

function dispatch(event) {
  for (const view of [views.teams, views.turns, views.permissions, views.jobs, views.usage]) {
    try {
      view.onEvent(event);
    } catch (error) {
      console.error(error);
    }
  }
}

async function enter() {
  $("#login-view").hidden = true;
  $("#dashboard").hidden = false;
  $("#logout").hidden = false;
  views ??= makeViews();
  stream = new EventStream({ onEvent: dispatch, onState: setConnection });
  stream.start();
  await Promise.all([
    views.teams.load(true),
    views.jobs.load(),
    views.usage.load(),
    views.logs.loadStores().then(() => views.logs.load()),
  ]);
}

function leave(message = "") {
  stream?.stop();
  stream = null;
  session.clear();
  // Drop everything the key showed: a fresh page, signed out.
  if (views) {
    location.reload();
    return;
  }
  $("#dashboard").hidden = true;
  $("#login-view").hidden = false;
  $("#logout").hidden = true;
  $("#login-error").textContent = message;
  setConnection("out");
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#api-key");
  const error = $("#login-error");
  const key = input.value.trim();
  error.textContent = "";
  if (!key) {
    error.textContent = "Enter an API key.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  try {
    await api("/api/teams", { key }); // any answer but 401 means the key is known
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) {
      error.textContent = `That key was refused: ${failure.message}`;
      input.setAttribute("aria-invalid", "true");
      input.select();
      return;
    }
    if (!(failure instanceof ApiError)) {
      error.textContent = `Iris could not be reached: ${failure.message}`;
      return;
    }
  }
  input.value = "";
  input.removeAttribute("aria-invalid");
  session.set(key);
  await enter();
  $("#main").focus();
});

$("#logout").addEventListener("click", () => leave());

if (session.key) enter();
else $("#api-key").focus();
