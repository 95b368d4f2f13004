// The trace explorer: every filter of GET /api/v1/traces (the filters live in the URL, so a view
// can be shared and the back button works), keyset pages of 50, newest first by default, and
// search by meaning (POST /api/v1/search).

import * as api from "./api.js";
import { h, card, notice, fmtTime, truncate, badge } from "./dom.js";

/** The list parameters of the API, as form fields: [name, label, kind, options]. */
const FILTERS = [
  ["from", "From", "datetime-local"],
  ["to", "To", "datetime-local"],
  ["model", "Model", "text"],
  ["model_version", "Model version", "text"],
  ["prompt_name", "Prompt", "text"],
  ["prompt_version", "Prompt version", "text"],
  ["environment", "Environment", "select", ["", "prod", "staging", "test", "dev"]],
  ["user_id", "User", "text"],
  ["user_role", "User role", "text"],
  ["session_id", "Session", "text"],
  ["tag", "Tag", "text"],
  ["trace_id", "Trace id", "text"],
  ["kind", "Feedback kind", "select", ["", "rating", "category", "comment", "correction", "annotation", "signal"]],
  ["category", "Category", "text"],
  ["rating", "Rating", "select", ["", "positive", "negative", "neutral"]],
  ["source", "Source", "select", ["", "end_user", "reviewer", "expert", "automatic"]],
  ["negative_feedback", "Negative feedback", "select", ["", "true", "false"]],
  ["satisfaction_below", "Satisfaction below", "number"],
  ["satisfaction_above", "Satisfaction above", "number"],
  ["order", "Order", "select", ["", "desc", "asc"]],
];
const PAGE = 50;

function toApiTime(local) {
  // datetime-local is a UTC wall time here (the UI shows UTC throughout).
  return local ? `${local.length === 16 ? `${local}:00` : local}Z` : "";
}

function fromApiTime(value) {
  return value ? value.replace(/Z$/, "").slice(0, 16) : "";
}

function filterForm(params) {
  const inputs = FILTERS.map(([name, label, kind, options]) => {
    const value = params.get(name) || "";
    let input;
    if (kind === "select") {
      input = h("select", { name }, options.map((o) => h("option", { value: o, selected: o === value }, o || "any")));
    } else {
      input = h("input", {
        name,
        type: kind,
        value: kind === "datetime-local" ? fromApiTime(value) : value,
        step: kind === "number" ? "0.05" : undefined,
        min: kind === "number" ? "-1" : undefined,
        max: kind === "number" ? "1" : undefined,
      });
    }
    input.id = `filter-${name}`;
    return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  });
  const metaValue = [...params.entries()].filter(([k]) => k.startsWith("meta.")).map(([k, v]) => `${k.slice(5)}=${v}`).join(", ");
  const meta = h("input", { name: "meta", id: "filter-meta", value: metaValue, placeholder: "key=value, key=value" });
  return h(
    "form",
    {
      class: "filters",
      "aria-label": "Trace filters",
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        for (const [name, , kind] of FILTERS) {
          const value = event.currentTarget.elements[name].value.trim();
          if (value) next.set(name, kind === "datetime-local" ? toApiTime(value) : value);
        }
        for (const pair of meta.value.split(",")) {
          const [key, ...rest] = pair.split("=");
          if (key.trim() && rest.length) next.append(`meta.${key.trim()}`, rest.join("=").trim());
        }
        location.hash = `#/traces?${next}`;
      },
    },
    h("div", { class: "filter-grid" }, inputs, h("div", { class: "field" }, h("label", { for: "filter-meta" }, "Metadata"), meta)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply filters"), h("a", { href: "#/traces", class: "button" }, "Clear")),
  );
}

function outcome(trace) {
  return trace.status === "error" ? badge("error", "bad") : null;
}

function traceRow(trace) {
  const model = trace.model ? [trace.model.name, trace.model.version].filter(Boolean).join(" ") : "";
  const prompt = trace.context?.prompt ? [trace.context.prompt.name, trace.context.prompt.version].filter(Boolean).join(" ") : "";
  return h(
    "tr",
    { "data-trace": trace.id },
    h("td", {}, h("a", { href: `#/traces/${encodeURIComponent(trace.id)}` }, truncate(trace.id, 24))),
    h("td", { class: "nowrap" }, fmtTime(trace.started_at || trace.created_at)),
    h("td", {}, truncate(trace.input, 90)),
    h("td", {}, truncate(trace.output, 90)),
    h("td", {}, model),
    h("td", {}, prompt),
    h("td", {}, trace.environment || ""),
    h("td", {}, outcome(trace), (trace.tags || []).slice(0, 3).map((t) => badge(t))),
  );
}

export async function render(view, { params }) {
  const apiParams = new URLSearchParams(params);
  apiParams.set("limit", String(PAGE));
  const semantic = params.get("q");
  apiParams.delete("q");
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Traces")));
  const searchBox = h("input", { type: "search", name: "q", id: "semantic-q", value: semantic || "", placeholder: "Find traces by meaning…" });
  view.append(
    h(
      "form",
      {
        class: "toolbar",
        role: "search",
        onsubmit: (event) => {
          event.preventDefault();
          location.hash = searchBox.value.trim() ? `#/traces?${new URLSearchParams({ q: searchBox.value.trim() })}` : "#/traces";
        },
      },
      h("label", { for: "semantic-q", class: "sr-only" }, "Search by meaning"),
      searchBox,
      h("button", { type: "submit" }, "Search"),
    ),
  );
  view.append(h("details", { class: "card", open: [...params.keys()].some((k) => k !== "cursor" && k !== "q") }, h("summary", {}, "Filters"), filterForm(params)));

  let traces;
  let next = null;
  if (semantic) {
    const answer = await api.post("/search", { text: semantic, k: 50 });
    traces = answer.results.map((r) => ({ ...r.trace, similarity: r.similarity }));
  } else {
    const page = await api.get(`/traces?${apiParams}`);
    traces = page.items;
    next = page.next_cursor;
  }
  const table = h(
    "table",
    { class: "table traces", id: "trace-list" },
    h("thead", {}, h("tr", {}, ["Trace", "Started (UTC)", "Query", "Output", "Model", "Prompt", "Env", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, traces.map(traceRow)),
  );
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  if (params.get("cursor")) pager.append(h("button", { type: "button", onclick: () => history.back() }, "← Newer"));
  if (next) {
    const following = new URLSearchParams(params);
    following.set("cursor", next);
    pager.append(h("a", { class: "button", href: `#/traces?${following}`, id: "next-page" }, "Older →"));
  }
  view.append(card(null, traces.length ? table : notice("No traces match."), pager));
}
