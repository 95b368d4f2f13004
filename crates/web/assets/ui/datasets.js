// Datasets: the list, a dataset's items (paged) at any version, its versions, cutting a new
// version, and exporting it in a trainer's format.

import * as api from "./api.js";
import { h, card, notice, fmtTime, fmtNum, truncate, badge, toast, field } from "./dom.js";
import { can, me } from "./app.js";

const FORMATS = ["sft", "openai", "preference", "csv"];

export async function render(view, { id, params }) {
  const { datasets } = await api.get("/datasets");
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Datasets")));
  const list = h(
    "table",
    { class: "table", id: "dataset-list" },
    h("thead", {}, h("tr", {}, ["Dataset", "Items", "Latest version", "Created"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      datasets.map((d) =>
        h(
          "tr",
          { class: d.name === id ? "selected" : "" },
          h("td", {}, h("a", { href: `#/datasets/${encodeURIComponent(d.name)}` }, d.name), d.description ? h("div", { class: "muted" }, truncate(d.description, 80)) : null),
          h("td", { class: "num" }, fmtNum(d.num_items)),
          h("td", { class: "num" }, d.latest_version ? `v${d.latest_version}` : "–"),
          h("td", { class: "nowrap" }, fmtTime(d.created_at)),
        ),
      ),
    ),
  );
  const layout = h("div", { class: "split" }, card(`All datasets (${datasets.length})`, datasets.length ? list : notice("No datasets yet: reviewers add cases from the review queue.")));
  view.append(layout);
  if (id) layout.append(await detail(id, params));
}

async function detail(name, params) {
  const base = `/datasets/${encodeURIComponent(name)}`;
  const version = params.get("version") || "";
  const after = params.get("after") || "";
  const [{ versions }, page] = await Promise.all([api.get(`${base}/versions`), api.get(`${base}/items${api.query({ version, after, limit: 50 })}`)]);
  const versionPicker = h(
    "select",
    { id: "dataset-version", onchange: (e) => (location.hash = `#/datasets/${encodeURIComponent(name)}${e.target.value ? `?version=${e.target.value}` : ""}`) },
    h("option", { value: "" }, "working set (latest)"),
    versions.map((v) => h("option", { value: v.version, selected: String(v.version) === version }, `v${v.version} · ${fmtNum(v.num_items)} items`)),
  );
  const note = h("input", { id: "version-note", placeholder: "what changed" });
  const cut = async () => {
    try {
      const created = await api.post(`${base}/versions`, { author: me().email, note: note.value.trim() || undefined });
      toast(`Version v${created.version} created`);
      location.hash = `#/datasets/${encodeURIComponent(name)}?version=${created.version}&t=${Date.now()}`;
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const format = h("select", { id: "export-format" }, FORMATS.map((f) => h("option", { value: f }, f)));
  const split = h("select", { id: "export-split" }, ["train", "validation", "all"].map((s) => h("option", { value: s }, s)));
  const exporting = async () => {
    try {
      const response = await fetch(`/api/v1${base}/export${api.query({ format: format.value, split: split.value, version: version || "latest" })}`, {
        headers: { "X-Feedloop-Project": api.project() },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error((await response.json()).error?.message || `HTTP ${response.status}`);
      const blob = await response.blob();
      const link = h("a", { href: URL.createObjectURL(blob), download: `${name}-${version || "latest"}-${split.value}.${format.value === "csv" ? "csv" : "jsonl"}` });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const next = page.next_after ? h("a", { class: "button", href: `#/datasets/${encodeURIComponent(name)}?${new URLSearchParams({ ...(version ? { version } : {}), after: page.next_after })}` }, "More →") : null;
  return card(
    null,
    h("h2", {}, name),
    h("div", { class: "toolbar" }, h("label", { for: "dataset-version" }, "Version"), versionPicker),
    h(
      "table",
      { class: "table", id: "dataset-items" },
      h("thead", {}, h("tr", {}, ["Input", "Ideal output", "Rejected output", "Source", "Categories"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        page.items.map((item) =>
          h(
            "tr",
            {},
            h("td", {}, truncate(item.input, 80)),
            h("td", {}, truncate(item.ideal_output, 80)),
            h("td", {}, truncate(item.rejected_output, 80)),
            h("td", {}, item.source),
            h("td", {}, (item.categories || []).map((c) => badge(c))),
          ),
        ),
      ),
    ),
    h("p", { class: "pager" }, next),
    h("h3", {}, "Versions"),
    h("ul", {}, versions.map((v) => h("li", {}, `v${v.version} · ${fmtNum(v.num_items)} items · ${fmtTime(v.created_at)}${v.created_by ? ` · ${v.created_by}` : ""}${v.note ? ` — ${v.note}` : ""}`))),
    can("review") ? h("div", { class: "toolbar" }, field("Note", note), h("button", { type: "button", id: "cut-version", onclick: cut }, "Cut a new version")) : null,
    h("h3", {}, "Export"),
    can("review")
      ? h("div", { class: "toolbar" }, field("Format", format), field("Split", split), h("button", { type: "button", class: "primary", id: "export", onclick: exporting }, "Download"))
      : notice("Exports need the reviewer or admin role."),
  );
}
