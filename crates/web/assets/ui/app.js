// The UI's shell: signing in, the project switcher, the role of the signed-in person in the
// project, and hash routing (#/, #/traces, #/traces/ID, #/review, #/lessons, #/datasets).

import * as api from "./api.js";
import { h, mount, notice, field } from "./dom.js";

const state = { me: null, role: null };

/** What the signed-in person may do in the current project. */
export function can(what) {
  const role = state.role;
  if (what === "review") return role === "admin" || role === "reviewer";
  if (what === "admin") return role === "admin";
  return role !== null;
}

export function me() {
  return state.me;
}

const pages = {
  dashboard: () => import("./dashboard.js"),
  traces: () => import("./traces.js"),
  trace: () => import("./trace.js"),
  review: () => import("./review.js"),
  lessons: () => import("./lessons.js"),
  datasets: () => import("./datasets.js"),
};

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(search);
  if (parts[0] === "traces" && parts[1]) return { page: "trace", id: parts[1], params };
  if (parts[0] && pages[parts[0]]) return { page: parts[0], params, id: parts[1] };
  return { page: "dashboard", params };
}

let renderToken = 0;

async function route() {
  if (!state.me) return;
  const main = document.getElementById("main");
  const target = parseHash();
  const token = ++renderToken;
  for (const link of document.querySelectorAll("#nav a")) {
    const active = link.dataset.page === target.page || (target.page === "trace" && link.dataset.page === "traces");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.page = target.page;
  mount(main, notice("Loading…"));
  try {
    const module = await pages[target.page]();
    if (token !== renderToken) return;
    const view = h("div", { class: "page", "data-page": target.page });
    await module.render(view, target);
    if (token !== renderToken) return;
    mount(main, view);
  } catch (error) {
    if (token !== renderToken) return;
    mount(main, notice(`Could not load this page: ${error.message}`, "error"));
  }
}

function renderLogin(message) {
  document.getElementById("top").hidden = true;
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "notice error", role: "alert", hidden: !message }, message || "");
  const form = h(
    "form",
    {
      class: "login card",
      "aria-label": "Sign in",
      onsubmit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        try {
          const body = await api.post("/auth/login", { email: email.value, password: password.value });
          signedIn(body);
        } catch (failure) {
          error.textContent = failure.message;
          error.hidden = false;
          password.select();
        }
      },
    },
    h("h1", {}, "Sign in to feedloop"),
    field("Email", email),
    field("Password", password),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    error,
  );
  mount(document.getElementById("main"), form);
  email.focus();
}

function roleIn(me, projectName) {
  const membership = me.memberships.find((m) => m.project === projectName);
  if (membership) return membership.role;
  return me.is_admin ? "admin" : null;
}

function signedIn(me) {
  state.me = me;
  api.setCsrf(me.csrf_token);
  const names = me.memberships.map((m) => m.project);
  if (me.is_admin && !names.includes("default")) names.unshift("default");
  const saved = localStorage.getItem("feedloop.project");
  const current = names.includes(saved) ? saved : names[0];
  if (!current) {
    mount(document.getElementById("main"), notice("You are not a member of any project yet; ask a project admin.", "error"));
    return;
  }
  selectProject(current);
  const switcher = document.getElementById("project-switcher");
  mount(switcher, names.map((name) => h("option", { value: name, selected: name === current }, name)));
  document.getElementById("who-email").textContent = me.email;
  document.getElementById("top").hidden = false;
  route();
}

function selectProject(name) {
  api.setProject(name);
  state.role = roleIn(state.me, name);
  localStorage.setItem("feedloop.project", name);
  const badge = document.getElementById("who-role");
  badge.textContent = state.role;
  badge.className = `badge role-${state.role}`;
  document.body.dataset.role = state.role;
}

async function start() {
  document.getElementById("project-switcher").addEventListener("change", (event) => {
    selectProject(event.target.value);
    route();
  });
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api.post("/auth/logout");
    } finally {
      state.me = null;
      renderLogin();
    }
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("feedloop:signed-out", () => {
    state.me = null;
    renderLogin("Your session ended; sign in again.");
  });
  try {
    signedIn(await api.get("/auth/me"));
  } catch {
    renderLogin();
  }
}

start();
