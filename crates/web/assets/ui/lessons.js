// Lessons: proposed, active and retired; approve, edit or retire one (each change names the
// version it is based on, so a concurrent edit is refused, not overwritten); the effect on later
// feedback against the hold-out.

import * as api from "./api.js";
import { h, card, notice, fmtTime, fmtPct, fmtNum, truncate, badge, toast, field } from "./dom.js";
import { horizontalBars, intervalBar } from "./chart.js";
import { can } from "./app.js";

const STATUSES = ["proposed", "active", "retired"];

export async function render(view, { id, params }) {
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "proposed";
  const { lessons } = await api.get(`/lessons${api.query({ status, limit: 200 })}`);
  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": "Lesson status" },
    STATUSES.map((s) => h("a", { href: `#/lessons?status=${s}`, "aria-current": s === status && !id ? "page" : undefined, class: s === status ? "active" : "" }, s)),
  );
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Lessons"), tabs));
  const list = h(
    "table",
    { class: "table", id: "lesson-list" },
    h("thead", {}, h("tr", {}, ["Lesson", "Priority", "Origin", "Evidence", "Updated"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      lessons.map((lesson) =>
        h(
          "tr",
          { "data-lesson": lesson.id, class: lesson.id === id ? "selected" : "" },
          h("td", {}, h("a", { href: `#/lessons/${encodeURIComponent(lesson.id)}?status=${status}` }, truncate(lesson.title, 70))),
          h("td", { class: "num" }, lesson.priority),
          h("td", {}, lesson.provenance.origin),
          h("td", { class: "num" }, `${(lesson.provenance.feedback_ids || []).length} feedback · ${(lesson.provenance.trace_ids || []).length} traces`),
          h("td", { class: "nowrap" }, fmtTime(lesson.updated_at)),
        ),
      ),
    ),
  );
  const layout = h("div", { class: "split" }, card(`${status} (${lessons.length})`, lessons.length ? list : notice(`No ${status} lessons.`)));
  view.append(layout);
  if (id) layout.append(await detail(id));
}

async function detail(id) {
  const [lesson, effect] = await Promise.all([
    api.get(`/lessons/${encodeURIComponent(id)}`),
    api.get(`/lessons/${encodeURIComponent(id)}/effect`).catch(() => null),
  ]);
  const editable = can("review");
  const title = h("input", { id: "lesson-edit-title", value: lesson.title });
  const instruction = h("textarea", { id: "lesson-edit-instruction", rows: 3 }, lesson.action.instruction || "");
  const warning = h("textarea", { id: "lesson-edit-warning", rows: 2 }, lesson.action.warning || "");
  const exampleQuery = h("textarea", { id: "lesson-edit-example-query", rows: 2 }, lesson.action.example?.query || "");
  const exampleAnswer = h("textarea", { id: "lesson-edit-example-answer", rows: 3 }, lesson.action.example?.answer || "");
  const priority = h("input", { id: "lesson-edit-priority", type: "number", value: lesson.priority, step: 1 });

  const change = async (extra, message) => {
    try {
      const action = {
        instruction: instruction.value.trim() || undefined,
        warning: warning.value.trim() || undefined,
        example: exampleQuery.value.trim() && exampleAnswer.value.trim() ? { query: exampleQuery.value.trim(), answer: exampleAnswer.value.trim() } : undefined,
      };
      const updated = await api.patch(`/lessons/${encodeURIComponent(id)}`, { version: lesson.version, title: title.value.trim(), priority: Number(priority.value), action, ...extra });
      toast(message);
      location.hash = `#/lessons/${encodeURIComponent(updated.id)}?status=${updated.status}`;
    } catch (error) {
      toast(`${error.message}${error.field ? ` (${error.field})` : ""}`, "error");
    }
  };

  const buttons = editable
    ? h(
        "div",
        { class: "actions" },
        lesson.status !== "active" ? h("button", { type: "button", class: "primary", id: "lesson-approve", onclick: () => change({ status: "active" }, "Lesson approved: it is active") }, lesson.status === "retired" ? "Re-activate" : "Approve") : null,
        h("button", { type: "submit", id: "lesson-save" }, "Save changes"),
        lesson.status !== "retired" ? h("button", { type: "button", id: "lesson-retire", onclick: () => change({ status: "retired" }, "Lesson retired") }, "Retire") : null,
      )
    : null;

  const trigger = lesson.trigger;
  const filter = Object.entries(trigger.filter || {}).filter(([, v]) => v && (!Array.isArray(v) || v.length));
  const effectView = effect ? effectCharts(effect) : notice("No effect measured yet.");
  return card(
    null,
    h("h2", { id: "lesson-detail-title" }, lesson.title, " ", badge(lesson.status, lesson.status === "active" ? "good" : lesson.status === "retired" ? "" : "warn"), " ", h("small", { class: "muted" }, `v${lesson.version}`)),
    h("p", { class: "muted" }, `${lesson.id} · ${lesson.provenance.origin}`, lesson.provenance.approved_by ? ` · approved by ${lesson.provenance.approved_by} ${fmtTime(lesson.provenance.approved_at)}` : "", lesson.updated_by ? ` · last changed by ${lesson.updated_by}` : ""),
    h("h3", {}, "Effect"),
    effectView,
    h("h3", {}, "Trigger"),
    h("ul", {}, (trigger.examples || []).map((e) => h("li", {}, e))),
    trigger.threshold !== undefined && trigger.threshold !== null ? h("p", { class: "muted" }, `similarity ≥ ${trigger.threshold}`) : null,
    filter.length ? h("p", {}, filter.map(([k, v]) => badge(`${k}: ${Array.isArray(v) ? v.join(", ") : v}`))) : null,
    h(
      "form",
      {
        class: "lesson-edit",
        "aria-label": "Edit lesson",
        onsubmit: (event) => {
          event.preventDefault();
          change({}, "Lesson saved");
        },
      },
      h("h3", {}, "Action"),
      field("Title", title),
      field("Instruction", instruction),
      field("Warning", warning),
      field("Example query", exampleQuery),
      field("Example answer", exampleAnswer),
      field("Priority", priority),
      buttons,
    ),
    h("h3", {}, "Provenance"),
    h("p", {}, (lesson.provenance.trace_ids || []).slice(0, 20).map((t) => h("a", { href: `#/traces/${encodeURIComponent(t)}`, class: "chip" }, truncate(t, 20)))),
  );
}

function effectCharts(effect) {
  const rows = [
    { label: `treated (${fmtNum(effect.treated.traces)} traces)`, value: effect.treated.rate ?? 0, color: "#4f6bed" },
    { label: `hold-out (${fmtNum(effect.holdout.traces)} traces)`, value: effect.holdout.rate ?? 0, color: "#7f8c8d" },
  ];
  const diff = effect.difference;
  return h(
    "div",
    { class: "effect", id: "lesson-effect" },
    h("p", {}, `${fmtNum(effect.impressions)} impressions, ${fmtNum(effect.holdout_impressions)} held out. Negative rate treated ${fmtPct(effect.treated.rate)} vs hold-out ${fmtPct(effect.holdout.rate)}.`),
    horizontalBars({ label: "Negative rate", rows, format: (v) => fmtPct(v) }),
    diff
      ? h("p", {}, "Difference ", intervalBar({ estimate: diff.difference, low: diff.low, high: diff.high, label: "treated minus hold-out" }), ` ${(diff.difference * 100).toFixed(1)} pts (${(diff.low * 100).toFixed(1)} to ${(diff.high * 100).toFixed(1)})`, diff.high < 0 ? badge("helps", "good") : diff.low > 0 ? badge("hurts", "bad") : badge("not yet significant"))
      : null,
  );
}
