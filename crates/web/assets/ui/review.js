// The review queue, driven by the keyboard: pick a queue, move through its open items (j/k),
// reserve one (r, or n for the next by priority), select text in the output to annotate it inline
// (a), write a correction with a diff against the output (c), promote the case to a lesson (l),
// add it to a dataset (s), mark it as a UX issue (u), resolve (v) or dismiss it (d).

import * as api from "./api.js";
import { h, card, notice, fmtTime, truncate, badge, toast, mount } from "./dom.js";
import { contextStack, outputWithMarks, feedbackItem, chars } from "./chainview.js";
import { renderDiff } from "./diff.js";
import { can, me } from "./app.js";

const SHORTCUTS = [
  ["j / k", "next / previous item"],
  ["r", "reserve the selected item"],
  ["n", "reserve the next item by priority"],
  ["a", "annotate the selected text of the output"],
  ["c", "write a correction"],
  ["l", "promote to a lesson"],
  ["s", "add to a dataset"],
  ["u", "mark as a UX issue"],
  ["v", "resolve"],
  ["d", "dismiss"],
  ["?", "show these shortcuts"],
];

let keyHandler = null;

export async function render(view, { id: queueName }) {
  if (keyHandler) document.removeEventListener("keydown", keyHandler);
  const [{ queues }, { datasets }] = await Promise.all([api.get("/queues"), api.get("/datasets")]);
  const datasetNames = new Set(datasets.map((d) => d.name));
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Review")));
  if (!queues.length) {
    view.append(notice("No review queues yet. An admin creates them (POST /api/v1/queues)."));
    return;
  }
  const queue = queues.find((q) => q.name === queueName) || queues[0];
  const picker = h(
    "select",
    { id: "queue-picker", onchange: (e) => (location.hash = `#/review/${encodeURIComponent(e.target.value)}`) },
    queues.map((q) => h("option", { value: q.name, selected: q.name === queue.name }, q.name)),
  );
  const reviewer = me().email;
  const readOnly = !can("review");
  const help = h(
    "details",
    { class: "shortcuts", id: "shortcuts" },
    h("summary", {}, "Keyboard shortcuts"),
    h("dl", {}, SHORTCUTS.map(([keys, what]) => h("div", {}, h("dt", {}, h("kbd", {}, keys)), h("dd", {}, what)))),
  );
  view.querySelector(".page-head").append(h("label", { for: "queue-picker" }, "Queue "), picker, help);
  if (readOnly) view.append(notice("You can look at the queue; reviewing needs the reviewer or admin role.", "warn"));
  if (queue.description) view.append(h("p", { class: "muted" }, queue.description));

  const state = { items: [], index: 0, item: null, chain: null };
  const list = h("ol", { class: "items", id: "review-items", role: "listbox", "aria-label": "Open items" });
  const work = h("div", { class: "work", id: "review-work" });
  view.append(h("div", { class: "review" }, card("Open items", list, h("button", { type: "button", id: "reserve-next", disabled: readOnly, onclick: () => reserveNext() }, "Reserve next (n)")), work));

  async function loadItems() {
    const [mine, pending] = await Promise.all([
      api.get(`/queues/${encodeURIComponent(queue.name)}/items${api.query({ state: "in_progress", limit: 50 })}`),
      api.get(`/queues/${encodeURIComponent(queue.name)}/items${api.query({ state: "pending", limit: 50 })}`),
    ]);
    state.items = [...mine.items.filter((i) => i.reserved_by === reviewer), ...pending.items];
    mount(
      list,
      state.items.length
        ? state.items.map((item, index) =>
            h(
              "li",
              { role: "option", "data-item": item.id, "aria-selected": index === state.index ? "true" : "false", onclick: () => select(index) },
              h("span", { class: "prio" }, item.priority.toFixed(2)),
              " ",
              h("code", {}, truncate(item.trace_id, 22)),
              " ",
              badge(item.state.replace("_", " "), item.state === "in_progress" ? "warn" : ""),
            ),
          )
        : h("li", { class: "muted" }, "Nothing open in this queue."),
    );
  }

  async function select(index) {
    if (!state.items.length) return;
    state.index = Math.max(0, Math.min(state.items.length - 1, index));
    for (const [i, element] of [...list.children].entries()) element.setAttribute("aria-selected", i === state.index ? "true" : "false");
    list.children[state.index]?.scrollIntoView({ block: "nearest" });
    await show(state.items[state.index]);
  }

  async function show(item) {
    state.item = item;
    state.chain = await api.get(`/traces/${encodeURIComponent(item.trace_id)}`);
    renderWork();
  }

  async function reserveNext() {
    const answer = await api.post(`/queues/${encodeURIComponent(queue.name)}/reserve`, { reviewer });
    if (!answer.item) {
      toast("Nothing left for you in this queue.", "warn");
      return;
    }
    toast(`Reserved item ${answer.item.id}`);
    await loadItems();
    const index = state.items.findIndex((i) => i.id === answer.item.id);
    await select(index < 0 ? 0 : index);
  }

  async function act(body, message) {
    const answer = await api.post(`/queues/${encodeURIComponent(queue.name)}/items/${state.item.id}/actions`, { author: reviewer, ...body });
    state.item = answer.item;
    state.items[state.index] = answer.item;
    if (message) toast(message(answer));
    return answer;
  }

  async function guarded(run) {
    try {
      await run();
    } catch (error) {
      toast(`${error.message}${error.field ? ` (${error.field})` : ""}`, "error");
    }
  }

  function renderWork() {
    const { item, chain } = state;
    const trace = chain.trace;
    const mineNow = item.reserved_by === reviewer;
    const output = outputWithMarks(trace.output || "", chain.feedback);
    const annotatePanel = h("form", { class: "panel", id: "annotate-panel", hidden: true, "aria-label": "Annotate selection" });
    const quote = h("blockquote", { id: "annotate-quote" });
    const comment = h("input", { id: "annotate-comment", name: "comment", placeholder: "What is wrong here?" });
    const tags = h("input", { id: "annotate-tags", name: "tags", placeholder: "tags, comma separated" });
    let range = null;
    mount(
      annotatePanel,
      h("h3", {}, "Annotate selection"),
      quote,
      h("div", { class: "field" }, h("label", { for: "annotate-comment" }, "Comment"), comment),
      h("div", { class: "field" }, h("label", { for: "annotate-tags" }, "Tags"), tags),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "annotate-save" }, "Save annotation"), h("button", { type: "button", onclick: () => (annotatePanel.hidden = true) }, "Cancel")),
    );
    annotatePanel.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!range) return;
      guarded(async () => {
        await act(
          { action: "annotate", annotation: { ...range, comment: comment.value.trim() || undefined, tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) } },
          () => `Annotated ${range.start}–${range.end}`,
        );
        state.chain = await api.get(`/traces/${encodeURIComponent(item.trace_id)}`);
        renderWork();
      });
    });

    const openAnnotate = () => {
      const selected = selectionIn(output);
      if (!selected) {
        toast("Select text in the output first.", "warn");
        return;
      }
      range = selected;
      quote.textContent = selected.quote;
      annotatePanel.hidden = false;
      comment.focus();
    };

    const correction = h("textarea", { id: "correction-text", rows: 6, "aria-label": "Correction" }, trace.output || "");
    const diff = h("div", { id: "correction-diff", "aria-live": "polite" }, renderDiff(trace.output || "", correction.value));
    correction.addEventListener("input", () => mount(diff, renderDiff(trace.output || "", correction.value)));
    const correctionKind = h("select", { id: "correction-kind", "aria-label": "Correction kind" }, ["answer", "rewording", "missing_fact"].map((k) => h("option", { value: k }, k.replace("_", " "))));
    const correctionForm = h(
      "form",
      {
        class: "panel",
        id: "correction-panel",
        onsubmit: (event) => {
          event.preventDefault();
          guarded(async () => {
            await act({ action: "correct", correction: { text: correction.value, kind: correctionKind.value } }, () => "Correction saved");
            state.chain = await api.get(`/traces/${encodeURIComponent(item.trace_id)}`);
            renderWork();
          });
        },
      },
      h("h3", {}, "Correction"),
      correction,
      h("div", { class: "actions" }, correctionKind, h("button", { type: "submit", class: "primary", id: "correction-save" }, "Save correction")),
      h("h4", {}, "Diff against the output"),
      diff,
    );

    const lessonTitle = h("input", { id: "lesson-title", placeholder: "Lesson title", value: truncate(`Answer: ${trace.input || ""}`, 80) });
    const lessonResult = h("p", { id: "lesson-result", "aria-live": "polite" });
    const datasetResult = h("p", { id: "dataset-result", "aria-live": "polite" });
    const dataset = h("input", { id: "dataset-name", placeholder: "dataset_name", value: datasets[0]?.name || "reviewed_cases", list: "dataset-names" });
    const datasetList = h("datalist", { id: "dataset-names" }, [...datasetNames].map((name) => h("option", { value: name })));
    const note = h("input", { id: "ux-note", placeholder: "What should the product change?" });
    const reason = h("input", { id: "dismiss-reason", placeholder: "Why dismiss?" });
    const promote = () =>
      guarded(async () => {
        const answer = await act({ action: "promote", title: lessonTitle.value.trim() || undefined }, () => "Promoted to a lesson");
        const lessonId = answer.event.payload.lesson_id;
        mount(lessonResult, "Proposed lesson ", h("a", { href: `#/lessons/${encodeURIComponent(lessonId)}`, id: "lesson-link" }, lessonId), " — approve it on the Lessons page.");
      });
    const toDataset = () =>
      guarded(async () => {
        const name = dataset.value.trim();
        if (!datasetNames.has(name)) {
          // A new name makes a new dataset (reviewers may create datasets).
          await api.post("/datasets", { name, description: `Cases from the ${queue.name} review queue`, author: reviewer });
          datasetNames.add(name);
        }
        const answer = await act({ action: "add_to_dataset", dataset: name }, (a) => `Added ${a.event.payload.items_added} item(s) to ${name}`);
        mount(datasetResult, "In ", h("a", { href: `#/datasets/${encodeURIComponent(name)}`, id: "dataset-link" }, name), ` (${answer.event.payload.items_added} added)`);
      });
    const uxIssue = () => guarded(() => act({ action: "mark_ux_issue", note: note.value.trim() || undefined }, () => "Marked as a UX issue"));
    const resolve = () => guarded(async () => {
      await act({ action: "resolve" }, () => "Resolved");
      await loadItems();
      if (state.items.length) await select(Math.min(state.index, state.items.length - 1));
      else mount(work, notice("Queue is empty. Well done."));
    });
    const dismiss = () => {
      if (!reason.value.trim()) {
        reason.focus();
        toast("Say why you dismiss it.", "warn");
        return;
      }
      guarded(async () => {
        await act({ action: "dismiss", reason: reason.value.trim() }, () => "Dismissed");
        await loadItems();
        if (state.items.length) await select(Math.min(state.index, state.items.length - 1));
        else mount(work, notice("Queue is empty. Well done."));
      });
    };

    state.commands = { a: openAnnotate, c: () => correction.focus(), l: promote, s: toDataset, u: uxIssue, v: resolve, d: dismiss };

    mount(
      work,
      h(
        "div",
        { class: "item-head" },
        h("h2", {}, `Item ${item.id} `, badge(item.state.replace("_", " "), item.state === "in_progress" ? "warn" : ""), item.ux_issue ? badge("UX issue", "warn") : null),
        h("span", { class: "muted" }, `priority ${item.priority.toFixed(2)} · enqueued ${fmtTime(item.enqueued_at)}`, item.reserved_by ? ` · reserved by ${item.reserved_by}` : ""),
        h("a", { href: `#/traces/${encodeURIComponent(trace.id)}` }, "Open the full trace"),
        !mineNow && !readOnly ? h("button", { type: "button", id: "reserve-item", class: "primary", onclick: () => guarded(async () => { await act({ action: "reserve" }, () => `Reserved item ${item.id}`); await loadItems(); renderWork(); }) }, "Reserve (r)") : null,
      ),
      card("Query", h("pre", { class: "query" }, trace.input || "")),
      h("details", { class: "card" }, h("summary", {}, "Context stack"), contextStack(trace)),
      card("Output — select text and press a to annotate", output, annotatePanel, h("button", { type: "button", id: "annotate-open", disabled: readOnly, onclick: openAnnotate }, "Annotate selection (a)")),
      readOnly ? null : correctionForm,
      readOnly
        ? null
        : card(
            "Outcome",
            h("div", { class: "outcomes" },
              h("div", { class: "field" }, h("label", { for: "lesson-title" }, "Lesson title"), lessonTitle, h("button", { type: "button", id: "promote", onclick: promote }, "Promote to lesson (l)"), lessonResult),
              h("div", { class: "field" }, h("label", { for: "dataset-name" }, "Dataset"), dataset, datasetList, h("button", { type: "button", id: "add-dataset", onclick: toDataset }, "Add to dataset (s)"), datasetResult),
              h("div", { class: "field" }, h("label", { for: "ux-note" }, "UX note"), note, h("button", { type: "button", id: "mark-ux", onclick: uxIssue }, "Mark as UX issue (u)")),
              h("div", { class: "field" }, h("label", { for: "dismiss-reason" }, "Dismiss reason"), reason, h("button", { type: "button", id: "dismiss", onclick: dismiss }, "Dismiss (d)")),
              h("div", { class: "field" }, h("span", {}, "Done with it?"), h("button", { type: "button", id: "resolve", class: "primary", onclick: resolve }, "Resolve (v)")),
            ),
          ),
      card(`Feedback (${chain.feedback.length})`, chain.feedback.length ? h("ul", { class: "feedback-list", id: "review-feedback" }, chain.feedback.map(feedbackItem)) : notice("No feedback.")),
    );
  }

  keyHandler = (event) => {
    if (!document.body.contains(view) || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const key = event.key;
    if (key === "?") {
      help.open = !help.open;
      return;
    }
    if (key === "j") select(state.index + 1);
    else if (key === "k") select(state.index - 1);
    else if (readOnly) return;
    else if (key === "n") guarded(reserveNext);
    else if (key === "r" && state.item) guarded(async () => { await act({ action: "reserve" }, () => `Reserved item ${state.item.id}`); await loadItems(); renderWork(); });
    else if (state.commands?.[key]) {
      event.preventDefault();
      state.commands[key]();
    } else return;
    event.preventDefault();
  };
  document.addEventListener("keydown", keyHandler);

  await loadItems();
  if (state.items.length) await select(0);
  else mount(work, notice("Queue is empty."));
}

/**
 * The selection inside `output` as the API's range: start and end in Unicode scalar values of
 * the output text, and the quote. Null when nothing (or something outside the output) is selected.
 */
export function selectionIn(output) {
  const selection = window.getSelection();
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  if (!output.contains(range.startContainer) || !output.contains(range.endContainer)) return null;
  const before = document.createRange();
  before.selectNodeContents(output);
  before.setEnd(range.startContainer, range.startOffset);
  const start = chars(before.toString()).length;
  const quote = range.toString();
  const length = chars(quote).length;
  if (!length) return null;
  return { start, end: start + length, quote };
}
