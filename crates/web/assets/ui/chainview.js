// Pieces of a trace's chain shared by the trace page and the review queue: the context stack,
// the output with its annotations highlighted, and the feedback list.

import { h, fmtTime, badge } from "./dom.js";

/** Splits `text` by code points (the API counts characters as Unicode scalar values). */
export function chars(text) {
  return Array.from(text || "");
}

/** The output with annotated ranges as <mark>; `data-start` on each piece gives its offset. */
export function outputWithMarks(output, feedback) {
  const text = chars(output);
  const ranges = feedback
    .filter((f) => f.annotation && !f.superseded_by)
    .map((f) => ({ start: Number(f.annotation.start), end: Number(f.annotation.end), note: f.annotation.comment || "", tags: f.annotation.tags || [] }))
    .filter((r) => r.start < r.end && r.end <= text.length)
    .sort((a, b) => a.start - b.start);
  const host = h("div", { class: "output", id: "trace-output" });
  let at = 0;
  for (const range of ranges) {
    if (range.start < at) continue;
    if (range.start > at) host.append(h("span", { "data-start": at }, text.slice(at, range.start).join("")));
    host.append(
      h("mark", { "data-start": range.start, title: [range.note, range.tags.map((t) => `#${t}`).join(" ")].filter(Boolean).join(" · ") }, text.slice(range.start, range.end).join("")),
    );
    at = range.end;
  }
  if (at < text.length) host.append(h("span", { "data-start": at }, text.slice(at).join("")));
  return host;
}

/** The context the model saw, as a stack from the system prompt down. */
export function contextStack(trace) {
  const context = trace.context || {};
  const layers = [];
  if (context.system_prompt) layers.push(layer("System prompt", h("pre", {}, context.system_prompt)));
  if (context.prompt) {
    const prompt = context.prompt;
    const vars = Object.entries(prompt.variables || {});
    layers.push(
      layer(
        `Prompt ${[prompt.name, prompt.version].filter(Boolean).join(" · ")}`,
        prompt.template ? h("pre", {}, prompt.template) : null,
        vars.length ? h("dl", { class: "kv" }, vars.map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))])) : null,
      ),
    );
  }
  for (const doc of context.documents || []) {
    layers.push(layer(`Document ${doc.title || doc.id || ""}${doc.score !== undefined ? ` (score ${Number(doc.score).toFixed(2)})` : ""}`, h("pre", {}, doc.content), doc.source ? h("small", {}, doc.source) : null));
  }
  for (const tool of context.tool_results || []) {
    layers.push(layer(`Tool ${tool.name}`, h("pre", {}, `${JSON.stringify(tool.arguments)}\n→ ${tool.output}`)));
  }
  for (const message of context.messages || []) {
    layers.push(layer(`Message (${message.role})`, h("pre", {}, message.content)));
  }
  return layers.length ? h("ol", { class: "stack" }, layers) : h("p", { class: "muted" }, "No context recorded.");
}

function layer(title, ...body) {
  return h("li", { class: "layer" }, h("h4", {}, title), ...body);
}

/** One feedback item as a line. */
export function feedbackItem(item) {
  const what = [];
  if (item.rating) what.push(badge(item.rating.value > (item.rating.min + item.rating.max) / 2 ? "▲ positive" : item.rating.value < (item.rating.min + item.rating.max) / 2 ? "▼ negative" : "neutral", item.negative ? "bad" : "good"));
  for (const category of item.categories || []) what.push(badge(category, "bad"));
  if (item.signal) what.push(badge(`signal: ${item.signal.type}`, item.negative ? "bad" : ""));
  if (item.comment) what.push(h("q", {}, item.comment));
  if (item.correction) what.push(h("div", { class: "correction" }, h("strong", {}, `Correction (${item.correction.kind || "answer"}): `), item.correction.text));
  if (item.annotation) {
    const a = item.annotation;
    what.push(h("div", { class: "annotation" }, h("mark", {}, a.quote), ` [${a.start}–${a.end}] `, a.comment || "", (a.tags || []).map((t) => badge(`#${t}`))));
  }
  return h(
    "li",
    { class: `feedback ${item.superseded_by ? "superseded" : ""}`, "data-kind": item.kind },
    h("div", { class: "meta" }, badge(item.kind), " ", item.source || "", item.author ? ` · ${item.author}` : "", ` · ${fmtTime(item.created_at || item.received_at)}`, item.superseded_by ? " · superseded" : ""),
    h("div", {}, what),
  );
}
