// Small DOM helpers. Every piece of server data goes in as text (textContent), never as HTML.

/** Create an element: el("td", {className: "x", title: "…"}, "text", childNode…). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** "12:03:04" for today, "3 Jan 12:03" otherwise; "—" for 0. */
export function time(ms) {
  if (!ms) return "—";
  const date = new Date(Number(ms));
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour12: false })
    : date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

/** "3 s ago", "5 min ago", … */
export function ago(ms) {
  if (!ms) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function bytes(value) {
  if (value === undefined || value === null || value === "") return "—";
  let n = Number(value);
  for (const unit of ["B", "KiB", "MiB", "GiB"]) {
    if (n < 1024 || unit === "GiB") return `${n.toFixed(unit === "B" ? 0 : 1)} ${unit}`;
    n /= 1024;
  }
  return "—";
}

export function usd(value) {
  const n = Number(value ?? 0);
  return n === 0 ? "$0" : n < 0.01 ? `$${n.toFixed(6)}` : `$${n.toFixed(4)}`;
}

/** Run fn soon, at most once per gap ms; calls while it waits or runs fold into one more run after it. */
export function throttled(fn, gap = 1500) {
  let timer = null;
  let running = false;
  let pending = false;
  let last = 0;
  const fire = async () => {
    timer = null;
    running = true;
    last = Date.now();
    try {
      await fn();
    } catch (error) {
      console.error(error);
    } finally {
      running = false;
      if (pending) {
        pending = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (running) pending = true;
    else if (timer === null) timer = setTimeout(fire, Math.max(0, last + gap - Date.now()));
  };
  return schedule;
}
