// One trace as its full chain: query → context stack → output → feedback and signals, with its
// spans, its session's timeline and similar known problems.

import * as api from "./api.js";
import { h, card, notice, fmtTime, truncate, badge } from "./dom.js";
import { contextStack, outputWithMarks, feedbackItem } from "./chainview.js";

/** The least similarity of a neighbour shown as a similar known problem. */
const SIMILAR_AT_LEAST = 0.4;

function spanTree(spans) {
  if (!spans?.length) return null;
  const children = new Map();
  for (const span of spans) {
    const parent = span.parent_id || "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(span);
  }
  const ids = new Set(spans.map((s) => s.id));
  const roots = spans.filter((s) => !s.parent_id || !ids.has(s.parent_id));
  const item = (span) =>
    h(
      "li",
      {},
      h("details", {}, h("summary", {}, badge(span.kind || "span"), " ", span.name || span.id, span.status === "error" ? badge("error", "bad") : null), h("pre", {}, JSON.stringify({ input: span.input, output: span.output, attributes: span.attributes }, null, 2))),
      children.has(span.id) ? h("ul", {}, children.get(span.id).map(item)) : null,
    );
  return h("ul", { class: "spans" }, roots.map(item));
}

function timeline(session, currentId) {
  const events = session.timeline.slice(0, 200);
  return h(
    "ol",
    { class: "timeline", id: "session-timeline" },
    events.map((event) =>
      h(
        "li",
        { class: `event ${event.event} ${event.trace_id === currentId ? "current" : ""}` },
        h("time", {}, fmtTime(event.at)),
        event.event === "query"
          ? h("a", { href: `#/traces/${encodeURIComponent(event.trace_id)}` }, `query ${truncate(session.traces.find((t) => t.trace.id === event.trace_id)?.trace.input || event.trace_id, 70)}`)
          : h("span", {}, badge(event.type || "signal", "signal"), event.source ? ` ${event.source}` : "", event.rule ? ` (rule ${event.rule})` : ""),
      ),
    ),
  );
}

export async function render(view, { id }) {
  const chain = await api.get(`/traces/${encodeURIComponent(id)}`);
  const trace = chain.trace;
  const [session, similar] = await Promise.all([
    trace.session_id ? api.get(`/sessions/${encodeURIComponent(trace.session_id)}`).catch(() => null) : null,
    api.get(`/traces/${encodeURIComponent(id)}/similar?k=8&problems_only=true`).catch(() => null),
  ]);
  const model = trace.model ? [trace.model.provider, trace.model.name, trace.model.version].filter(Boolean).join(" · ") : "–";
  const facts = [
    ["Model", model],
    ["Prompt", trace.context?.prompt ? [trace.context.prompt.name, trace.context.prompt.version].filter(Boolean).join(" · ") : "–"],
    ["Environment", trace.environment || "–"],
    ["User", [trace.user_id, trace.user_role].filter(Boolean).join(" · ") || "–"],
    ["Started", fmtTime(trace.started_at || trace.created_at)],
    ["Latency", trace.latency_ms !== undefined ? `${Math.round(trace.latency_ms)} ms` : "–"],
    ["Tokens", trace.usage ? `${trace.usage.input_tokens ?? "?"} in / ${trace.usage.output_tokens ?? "?"} out` : "–"],
    ["Satisfaction", chain.satisfaction ? `${chain.satisfaction.score.toFixed(2)} (${chain.satisfaction.num_votes} votes)` : "–"],
  ];
  const current = chain.feedback.filter((f) => !f.superseded_by);
  // Neighbours far off in meaning are not "similar problems"; show the close ones only.
  const similarProblems = (similar?.results || []).filter((r) => r.similarity >= SIMILAR_AT_LEAST).slice(0, 5);
  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Trace ", h("code", {}, trace.id)), h("a", { href: "#/traces", class: "button" }, "← All traces")),
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h(
      "div",
      { class: "chain", id: "trace-chain" },
      card("1 · Query", h("pre", { class: "query", id: "trace-input" }, trace.input || "")),
      card("2 · Context stack", contextStack(trace)),
      card("3 · Output", outputWithMarks(trace.output || "", chain.feedback), trace.error ? notice(trace.error, "error") : null),
      card(`4 · Feedback and signals (${current.length} current)`, chain.feedback.length ? h("ul", { class: "feedback-list", id: "trace-feedback" }, chain.feedback.map(feedbackItem)) : notice("No feedback yet.")),
    ),
    h(
      "div",
      { class: "grid2" },
      card(
        "Session timeline",
        session ? h("p", { class: "muted" }, `Session ${session.session_id} · ${session.traces.length} traces`) : null,
        session ? timeline(session, trace.id) : notice("Not part of a session."),
        chain.session
          ? h("p", { class: "pager" }, chain.session.previous ? h("a", { class: "button", href: `#/traces/${encodeURIComponent(chain.session.previous.id)}` }, "← Previous in session") : null, chain.session.next ? h("a", { class: "button", href: `#/traces/${encodeURIComponent(chain.session.next.id)}` }, "Next in session →") : null)
          : null,
      ),
      card(
        "Similar known problems",
        similarProblems.length
          ? h(
              "ul",
              { class: "similar", id: "similar-problems" },
              similarProblems.map((r) =>
                h(
                  "li",
                  {},
                  h("a", { href: `#/traces/${encodeURIComponent(r.trace.id)}` }, truncate(r.trace.input, 80)),
                  ` · similarity ${r.similarity.toFixed(2)} · ${r.feedback.negative} negative`,
                  r.feedback.categories.slice(0, 3).map((c) => badge(c, "bad")),
                  r.feedback.corrections[0] ? h("div", { class: "muted" }, `corrected: ${truncate(r.feedback.corrections[0].text, 100)}`) : null,
                ),
              ),
            )
          : notice("No similar problems known."),
      ),
    ),
  );
  if (trace.spans?.length) view.append(card(`Spans (${trace.spans.length})`, spanTree(trace.spans)));
}
