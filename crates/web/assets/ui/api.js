// The JSON API as the UI calls it: same-origin fetch with the session cookie, the project in the
// X-Feedloop-Project header, and the session's CSRF token on every request that changes something.

const session = { csrf: null, project: null };

/** An API error: the server's stable code, message and field. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.field = error.field || null;
  }
}

export function setCsrf(token) {
  session.csrf = token;
}

export function setProject(name) {
  session.project = name;
}

export function project() {
  return session.project;
}

/** Calls `path` (under /api/v1) and returns the parsed JSON answer (or null for 204). */
export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session.project) headers["X-Feedloop-Project"] = session.project;
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    if (response.status === 401 && !path.startsWith("/auth/")) {
      window.dispatchEvent(new CustomEvent("feedloop:signed-out"));
    }
    throw error;
  }
  return parsed;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const patch = (path, body) => call("PATCH", path, body);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
