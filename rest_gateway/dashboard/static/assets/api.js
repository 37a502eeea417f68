// The REST routes, called with the operator's key in the Authorization header (never in a URL).
// The key lives in this tab's sessionStorage: it survives a reload, not the tab, and no other site can read it.

const KEY = "iris.apiKey";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY) ?? "";
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** An HTTP error with the gateway's error body ({error, message, statusCode, code, details}). */
export class ApiError extends Error {
  constructor(status, body, text) {
    super(body?.message ?? (text || `HTTP ${status}`));
    this.status = status;
    this.reason = body?.error ?? "";
    this.body = body;
  }

  /** One line for a person: "403 PermissionDeniedError: …". */
  get summary() {
    return `${this.status}${this.reason ? " " + this.reason : ""}: ${this.message}`;
  }
}

const rateListeners = new Set();

/** Be told the X-RateLimit-* headers of every reply: the dashboard spends the same budget as any client. */
export function onRateLimit(listener) {
  rateListeners.add(listener);
}

function noteRate(response) {
  const remaining = response.headers.get("x-ratelimit-remaining");
  const limit = response.headers.get("x-ratelimit-limit");
  if (remaining !== null) rateListeners.forEach((listener) => listener(Number(remaining), Number(limit)));
}

/** Headers every call sends. */
export function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${session.key}`, ...extra };
}

/** Build a query string; arrays repeat their key (groupBy=team&groupBy=day), empty values are left out. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") search.append(name, String(one));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Call a route; resolve to its JSON, or throw ApiError with the gateway's error body. */
export async function api(path, { method = "GET", body, signal, key } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${key ?? session.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
  });
  noteRate(response);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data, text);
  return data;
}
