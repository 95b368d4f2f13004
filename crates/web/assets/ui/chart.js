// Charts as inline SVG: time series with confidence bands, stacked bars, horizontal bars and
// sparklines. Every data mark carries `class="mark"` and `data-*` attributes with its series,
// position and value, so the marks can be read back (the browser tests compare them with the API).

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#4f6bed", "#e8684a", "#2fb38c", "#f2b705", "#9b59b6", "#1fa2c9", "#d35485", "#7f8c8d"];

function svg(tag, attrs, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) element.setAttribute(key, String(value));
  }
  for (const child of children) if (child) element.append(child);
  return element;
}

function text(x, y, content, attrs = {}) {
  const element = svg("text", { x, y, ...attrs });
  element.textContent = content;
  return element;
}

function title(content) {
  const element = svg("title");
  element.textContent = content;
  return element;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function legend(series) {
  const host = document.createElement("div");
  host.className = "legend";
  series.forEach((entry, index) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = entry.color || PALETTE[index % PALETTE.length];
    item.append(swatch, entry.name);
    host.append(item);
  });
  return host;
}

function frame(label, width, height) {
  return svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
    class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
}

function yAxis(root, { left, top, plotHeight, plotWidth, max, format }) {
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = top + plotHeight - (plotHeight * i) / 4;
    root.append(svg("line", { x1: left, x2: left + plotWidth, y1: y, y2: y, class: "grid" }));
    root.append(text(left - 6, y + 4, format(value), { class: "tick", "text-anchor": "end" }));
  }
}

function xLabels(root, labels, xOf, y) {
  const every = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, index) => {
    if (index % every === 0 || index === labels.length - 1) {
      root.append(text(xOf(index), y, label, { class: "tick", "text-anchor": "middle" }));
    }
  });
}

/**
 * A line chart over shared x labels. `series`: [{name, values: [number|null], low?: [], high?: []}].
 * Intervals (low/high) are drawn as a band around the line.
 */
export function lineChart({ label, labels, series, format = (v) => v.toFixed(2), max, width = 640, height = 240 }) {
  const margin = { left: 48, right: 22, top: 12, bottom: 26 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const all = series.flatMap((s) => [...s.values, ...(s.high || [])]).filter((v) => v !== null && v !== undefined);
  const top = max ?? niceMax(Math.max(0, ...all));
  const xOf = (i) => margin.left + (labels.length <= 1 ? plotWidth / 2 : (plotWidth * i) / (labels.length - 1));
  const yOf = (v) => margin.top + plotHeight - (plotHeight * Math.min(v, top)) / top;
  const root = frame(label, width, height);
  yAxis(root, { left: margin.left, top: margin.top, plotHeight, plotWidth, max: top, format });
  xLabels(root, labels, xOf, height - 8);
  series.forEach((entry, index) => {
    const color = entry.color || PALETTE[index % PALETTE.length];
    const points = entry.values.map((v, i) => (v === null || v === undefined ? null : [i, v]));
    if (entry.low && entry.high) {
      const upper = [];
      const lower = [];
      entry.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        upper.push(`${xOf(i)},${yOf(entry.high[i])}`);
        lower.unshift(`${xOf(i)},${yOf(entry.low[i])}`);
      });
      if (upper.length > 1) {
        root.append(svg("polygon", { points: [...upper, ...lower].join(" "), fill: color, opacity: 0.15, class: "band" }));
      }
      entry.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        root.append(svg("line", { x1: xOf(i), x2: xOf(i), y1: yOf(entry.low[i]), y2: yOf(entry.high[i]), stroke: color, opacity: 0.5, class: "whisker" }));
      });
    }
    let path = "";
    let pen = false;
    for (const point of points) {
      if (!point) {
        pen = false;
        continue;
      }
      path += `${pen ? "L" : "M"}${xOf(point[0])},${yOf(point[1])}`;
      pen = true;
    }
    root.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, class: "line" }));
    for (const point of points) {
      if (!point) continue;
      const [i, v] = point;
      const range = entry.low ? ` (${format(entry.low[i])} – ${format(entry.high[i])})` : "";
      root.append(
        svg(
          "circle",
          { cx: xOf(i), cy: yOf(v), r: 3.5, fill: color, class: "mark", "data-series": entry.name, "data-x": labels[i], "data-value": v },
          title(`${entry.name} · ${labels[i]}: ${format(v)}${range}`),
        ),
      );
    }
  });
  return wrap(root, series);
}

/** Stacked bars over x labels. `series`: [{name, values: [number]}]. */
export function stackedBars({ label, labels, series, format = (v) => String(Math.round(v)), tick = (x) => x, width = 640, height = 240 }) {
  const margin = { left: 48, right: 22, top: 12, bottom: 26 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const top = niceMax(Math.max(0, ...totals));
  const slot = plotWidth / Math.max(1, labels.length);
  const barWidth = Math.max(2, Math.min(36, slot * 0.7));
  const xOf = (i) => margin.left + slot * i + slot / 2;
  const root = frame(label, width, height);
  yAxis(root, { left: margin.left, top: margin.top, plotHeight, plotWidth, max: top, format });
  xLabels(root, labels.map(tick), xOf, height - 8);
  labels.forEach((x, i) => {
    let base = 0;
    series.forEach((entry, index) => {
      const value = entry.values[i] || 0;
      if (value <= 0) return;
      const y0 = margin.top + plotHeight - (plotHeight * base) / top;
      const y1 = margin.top + plotHeight - (plotHeight * (base + value)) / top;
      root.append(
        svg(
          "rect",
          {
            x: xOf(i) - barWidth / 2,
            y: y1,
            width: barWidth,
            height: Math.max(0.5, y0 - y1),
            fill: entry.color || PALETTE[index % PALETTE.length],
            class: "mark",
            "data-series": entry.name,
            "data-x": x,
            "data-value": value,
          },
          title(`${entry.name} · ${x}: ${format(value)}`),
        ),
      );
      base += value;
    });
  });
  return wrap(root, series);
}

/** Horizontal bars, one per row: [{label, value, note?}]. */
export function horizontalBars({ label, rows, format = (v) => String(v), width = 640, color = PALETTE[0] }) {
  const rowHeight = 26;
  const labelWidth = 220;
  const height = Math.max(rowHeight, rows.length * rowHeight) + 4;
  const max = niceMax(Math.max(0, ...rows.map((r) => r.value)));
  const plot = width - labelWidth - 60;
  const root = frame(label, width, height);
  // Drawn at its own size (not stretched to the card): bar text stays legible.
  root.setAttribute("style", `max-width: ${width}px`);
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    root.append(text(labelWidth - 8, y + 15, row.label.length > 34 ? `${row.label.slice(0, 33)}…` : row.label, { class: "tick", "text-anchor": "end" }));
    const barWidth = Math.max(1, (plot * row.value) / max);
    root.append(
      svg(
        "rect",
        { x: labelWidth, y, width: barWidth, height: rowHeight - 8, rx: 3, fill: row.color || color, class: "mark", "data-series": label, "data-x": row.label, "data-value": row.value },
        title(`${row.label}: ${format(row.value)}${row.note ? ` · ${row.note}` : ""}`),
      ),
    );
    root.append(text(labelWidth + barWidth + 6, y + 15, format(row.value), { class: "tick" }));
  });
  return wrap(root, []);
}

/** A small trend line of daily counts (no axes). */
export function sparkline(values, { width = 120, height = 28, color = PALETTE[1], label = "trend" } = {}) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((v, i) => `${i * step},${height - 2 - ((height - 4) * v) / max}`).join(" ");
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", role: "img", "aria-label": label });
  root.append(svg("polyline", { points, fill: "none", stroke: color, "stroke-width": 1.5 }));
  return root;
}

/** An interval on a scale from `min` to `max`, with a zero line: for effect sizes. */
export function intervalBar({ estimate, low, high, min = -1, max = 1, width = 220, label = "interval" }) {
  const height = 22;
  const xOf = (v) => ((Math.max(min, Math.min(max, v)) - min) / (max - min)) * (width - 8) + 4;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "interval", role: "img", "aria-label": label });
  root.append(svg("line", { x1: xOf(0), x2: xOf(0), y1: 2, y2: height - 2, class: "zero" }));
  root.append(svg("line", { x1: xOf(low), x2: xOf(high), y1: height / 2, y2: height / 2, stroke: high < 0 ? "#2fb38c" : low > 0 ? "#e8684a" : "#7f8c8d", "stroke-width": 4, "stroke-linecap": "round" }));
  root.append(svg("circle", { cx: xOf(estimate), cy: height / 2, r: 4.5, fill: "#1f2937", class: "mark", "data-value": estimate }, title(`${estimate.toFixed(3)} (${low.toFixed(3)} – ${high.toFixed(3)})`)));
  return root;
}

function wrap(root, series) {
  const host = document.createElement("figure");
  host.className = "chart-host";
  host.append(root);
  if (series.length > 1 || (series.length === 1 && series[0].name)) host.append(legend(series));
  return host;
}
