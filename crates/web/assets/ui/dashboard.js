// The dashboard: feedback volume and negative rate over time, the negative rate by model version
// and prompt version with 95 % intervals, the implicit-signal mix, the top problem clusters with
// their trend, active lessons with their measured effect, and the review backlog.

import * as api from "./api.js";
import { h, card, notice, fmtDay, fmtPct, fmtNum, truncate } from "./dom.js";
import { lineChart, stackedBars, horizontalBars, sparkline, intervalBar } from "./chart.js";

const RANGES = [7, 14, 30, 90];
const KIND_ORDER = ["rating", "category", "comment", "correction", "annotation", "signal"];

function dayLabels(from, days) {
  const labels = [];
  for (let i = 0; i < days; i++) labels.push(new Date(from.getTime() + i * 86_400_000).toISOString().slice(0, 10));
  return labels;
}

/** Buckets of one aggregation indexed by day and group. */
function byDay(buckets) {
  const map = new Map();
  for (const bucket of buckets) {
    const day = bucket.start.slice(0, 10);
    if (!map.has(day)) map.set(day, new Map());
    map.get(day).set(bucket.group ?? "(none)", bucket);
  }
  return map;
}

function groupsOf(buckets, limit = 6) {
  const totals = new Map();
  for (const bucket of buckets) {
    const group = bucket.group ?? "(none)";
    totals.set(group, (totals.get(group) || 0) + bucket.traces);
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([group]) => group);
}

function rateSeries(name, labels, days, group) {
  const values = [];
  const low = [];
  const high = [];
  for (const label of labels) {
    const bucket = days.get(label)?.get(group);
    const rate = bucket?.negative_traces?.rate;
    values.push(rate ? rate.rate : null);
    low.push(rate ? rate.low : null);
    high.push(rate ? rate.high : null);
  }
  return { name, values, low, high };
}

async function backlog() {
  const { queues } = await api.get("/queues");
  const counts = await Promise.all(queues.slice(0, 12).map((queue) => api.get(`/queues/${encodeURIComponent(queue.name)}/counts`)));
  const rows = counts.flatMap((c) => [
    { queue: c.queue, state: "pending", count: c.pending },
    { queue: c.queue, state: "in_progress", count: c.in_progress },
  ]);
  return { queues, rows };
}

async function lessonEffects() {
  const { lessons } = await api.get("/lessons?status=active&limit=8");
  const effects = await Promise.all(lessons.map((lesson) => api.get(`/lessons/${encodeURIComponent(lesson.id)}/effect`).catch(() => null)));
  return lessons.map((lesson, i) => ({ lesson, effect: effects[i] }));
}

export async function render(view, { params }) {
  const days = RANGES.includes(Number(params.get("days"))) ? Number(params.get("days")) : 14;
  const environment = params.get("environment") || "";
  const now = new Date();
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  const from = new Date(to.getTime() - days * 86_400_000);
  const range = { from: from.toISOString(), to: to.toISOString(), bucket: "day", environment };
  const labels = dayLabels(from, days);

  const [overall, byModel, byPrompt, clusters, lessons, review] = await Promise.all([
    api.get(`/analytics/feedback${api.query(range)}`),
    api.get(`/analytics/feedback${api.query({ ...range, group_by: "model_version" })}`),
    api.get(`/analytics/feedback${api.query({ ...range, group_by: "prompt_version" })}`),
    api.get("/clusters?limit=8"),
    lessonEffects(),
    backlog(),
  ]);

  const rangePicker = h(
    "form",
    { class: "toolbar", "aria-label": "Range", onchange: (e) => navigate(e.currentTarget) },
    h("label", { for: "dash-days" }, "Last"),
    h("select", { id: "dash-days", name: "days" }, RANGES.map((d) => h("option", { value: d, selected: d === days }, `${d} days`))),
    h("label", { for: "dash-env" }, "Environment"),
    h("select", { id: "dash-env", name: "environment" }, ["", "prod", "staging", "test", "dev"].map((e) => h("option", { value: e, selected: e === environment }, e || "all"))),
  );

  const overallDays = byDay(overall.buckets);
  const totals = overall.buckets.reduce(
    (sum, b) => ({ feedback: sum.feedback + b.feedback, traces: sum.traces + b.traces, negative: sum.negative + b.negative_traces.count }),
    { feedback: 0, traces: 0, negative: 0 },
  );
  const kinds = KIND_ORDER.filter((kind) => overall.buckets.some((b) => b.kinds[kind]));
  const volume = stackedBars({
    label: "Feedback per day by kind",
    labels,
    tick: fmtLabel,
    series: kinds.map((kind) => ({ name: kind, values: labels.map((l) => overallDays.get(l)?.get("(none)")?.kinds[kind]?.count || 0) })),
  });
  const negativeRate = lineChart({
    label: "Negative rate per day",
    labels: labels.map(fmtLabel),
    series: [rateSeries("negative rate", labels, overallDays, "(none)")],
    format: (v) => `${Math.round(v * 100)}%`,
    max: 1,
  });
  const versionChart = (answer, what) => {
    const daysMap = byDay(answer.buckets);
    const groups = groupsOf(answer.buckets);
    if (!groups.length) return notice(`No feedback with a ${what} in this range.`);
    return lineChart({
      label: `Negative rate by ${what}`,
      labels: labels.map(fmtLabel),
      series: groups.map((group) => rateSeries(group, labels, daysMap, group)),
      format: (v) => `${Math.round(v * 100)}%`,
      max: 1,
    });
  };
  const signalNames = [...new Set(overall.buckets.flatMap((b) => Object.keys(b.signals)))].sort();
  const signals = signalNames.length
    ? stackedBars({
        label: "Implicit signals per day",
        labels,
        tick: fmtLabel,
        series: signalNames.map((name) => ({ name, values: labels.map((l) => overallDays.get(l)?.get("(none)")?.signals[name]?.count || 0) })),
      })
    : notice("No implicit signals in this range.");

  const clusterRows = clusters.clusters.map((cluster) => {
    const trend = labelsTrend(cluster.trend, 14);
    const change = cluster.last_7_days - cluster.previous_7_days;
    return h(
      "tr",
      {},
      h("td", {}, (cluster.examples || [])[0]
          ? h("a", { href: `#/traces/${encodeURIComponent((cluster.examples || [])[0].trace_id)}`, title: `${(cluster.terms || []).join(", ")} · e.g. ${(cluster.examples || [])[0].query}` }, truncate(cluster.name, 48))
          : truncate(cluster.name, 48)),
      h("td", { class: "num" }, fmtNum(cluster.size)),
      h("td", {}, sparkline(trend, { label: `daily members of ${cluster.name}` })),
      h("td", { class: `num ${change > 0 ? "bad" : change < 0 ? "good" : ""}` }, `${change > 0 ? "+" : ""}${change}`),
      h("td", {}, (cluster.top_categories || []).slice(0, 2).map((c) => h("span", { class: "badge" }, `${c.name} ${c.count}`))),
    );
  });
  const clusterChart = clusters.clusters.length
    ? horizontalBars({ label: "Cluster size", width: 900, rows: clusters.clusters.map((c) => ({ label: c.name, value: c.size })) })
    : null;

  const lessonRows = lessons.map(({ lesson, effect }) => {
    const diff = effect?.difference;
    return h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/lessons/${encodeURIComponent(lesson.id)}` }, truncate(lesson.title, 52))),
      h("td", { class: "num" }, fmtNum(effect?.impressions)),
      h("td", { class: "num" }, effect ? fmtPct(effect.treated.rate) : "–"),
      h("td", { class: "num" }, effect ? fmtPct(effect.holdout.rate) : "–"),
      h("td", {}, diff ? intervalBar({ estimate: diff.difference, low: diff.low, high: diff.high, label: `effect of ${lesson.title}` }) : h("span", { class: "muted" }, "not enough data")),
    );
  });

  const backlogChart = review.rows.length
    ? horizontalBars({
        label: "Review backlog",
        rows: review.rows.map((row) => ({ label: `${row.queue} · ${row.state.replace("_", " ")}`, value: row.count, color: row.state === "pending" ? "#4f6bed" : "#f2b705" })),
      })
    : notice("No review queues yet.");

  view.append(
    h("div", { class: "page-head" }, h("h1", {}, "Dashboard"), rangePicker),
    h(
      "div",
      { class: "kpis" },
      kpi("Feedback", fmtNum(totals.feedback)),
      kpi("Traces with feedback", fmtNum(totals.traces)),
      kpi("Negative rate", totals.traces ? fmtPct(totals.negative / totals.traces) : "–"),
      kpi("Review backlog", fmtNum(review.rows.filter((r) => r.state === "pending").reduce((s, r) => s + r.count, 0))),
      kpi("Active lessons", fmtNum(lessons.length)),
    ),
    h(
      "div",
      { class: "grid2" },
      card("Feedback volume", h("div", { id: "chart-volume" }, volume)),
      card("Negative rate (95 % interval)", h("div", { id: "chart-negative" }, negativeRate)),
      card("By model version", h("div", { id: "chart-model" }, versionChart(byModel, "model version"))),
      card("By prompt version", h("div", { id: "chart-prompt" }, versionChart(byPrompt, "prompt version"))),
      card("Implicit signals", h("div", { id: "chart-signals" }, signals)),
      card("Review backlog", h("div", { id: "chart-backlog" }, backlogChart)),
    ),
    card(
      "Top problem clusters",
      h("div", { id: "chart-clusters" }, clusterChart),
      clusters.clusters.length
        ? h("table", { class: "table" }, h("thead", {}, h("tr", {}, ["Cluster", "Size", "14 days", "7-day change", "Categories"].map((t) => h("th", {}, t)))), h("tbody", {}, clusterRows))
        : notice("No clusters yet: they form from negative feedback (refresh runs hourly)."),
    ),
    card(
      "Lessons and their effect (treated − hold-out negative rate; left of zero helps)",
      lessons.length
        ? h("table", { class: "table", id: "lesson-effects" }, h("thead", {}, h("tr", {}, ["Lesson", "Impressions", "Treated", "Hold-out", "Difference (95 %)"].map((t) => h("th", {}, t)))), h("tbody", {}, lessonRows))
        : notice("No active lessons yet."),
    ),
  );
}

function fmtLabel(day) {
  return fmtDay(`${day}T00:00:00Z`);
}

function labelsTrend(trend, days) {
  const counts = new Map(trend.map((d) => [d.day.slice(0, 10), d.count]));
  const today = new Date();
  const values = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i)).toISOString().slice(0, 10);
    values.push(counts.get(day) || 0);
  }
  return values;
}

function kpi(label, value) {
  return h("div", { class: "kpi" }, h("span", { class: "kpi-value" }, value), h("span", { class: "kpi-label" }, label));
}

function navigate(form) {
  const params = new URLSearchParams(new FormData(form));
  for (const [key, value] of [...params]) if (!value) params.delete(key);
  location.hash = `#/?${params}`;
}
