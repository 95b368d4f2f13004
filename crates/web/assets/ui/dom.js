// A few DOM helpers: element creation, text formatting and small shared widgets.

/** Keys set as attributes (the rest are set as properties, some of which are read-only). */
const ATTRIBUTES = new Set(["class", "style", "for", "role", "list", "form"]);

/**
 * Creates an element. `attrs` keys starting with `on` add listeners; `class`, `style`, `for`, `role`,
 * `list`, `form`, `data-*` and `aria-*` are set as attributes; other keys as properties.
 */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (ATTRIBUTES.has(key) || key.includes("-")) {
      element.setAttribute(key, value === true ? "" : String(value));
    } else {
      element[key] = value;
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `element`. */
export function mount(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function fmtTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return date.toISOString().replace("T", " ").slice(0, 19);
}

export function fmtDay(value) {
  return new Date(value).toISOString().slice(5, 10);
}

export function fmtPct(rate) {
  return rate === undefined || rate === null ? "–" : `${(rate * 100).toFixed(1)} %`;
}

export function fmtNum(value) {
  return value === undefined || value === null ? "–" : Number(value).toLocaleString("en-US");
}

export function truncate(text, length) {
  if (!text) return "";
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/** A titled card. */
export function card(title, ...body) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...body);
}

/** A short status line shown while a page loads, or an error. */
export function notice(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

/** Shows a short message at the bottom of the window. */
export function toast(text, kind = "ok") {
  const host = document.getElementById("toasts");
  if (!host) return;
  const element = h("div", { class: `toast ${kind}`, role: "status" }, text);
  host.append(element);
  setTimeout(() => element.remove(), 4000);
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}
