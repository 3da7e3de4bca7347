// The GAIA dashboard: plain JavaScript, no framework, no build step, embedded in the server.
//
// Rules kept throughout:
// - Every string from outside (job names, params, log lines, worker names, messages) reaches the
//   page through textContent / createTextNode / property assignment, never as HTML.
// - Updates arrive by server-sent events (one EventSource, reopened with `after=` the last event
//   id when a page needs other messages); lists are paginated on the server.
"use strict";

import { LineChart, BoxChart, HistChart, PALETTE, fmtNum, saveBlob } from "./chart.js";

// ---- small helpers ---------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);

/**
 * Creates an element. `props`: class, text, title, href, type, value, placeholder, disabled, on*
 * (listeners), dataset, style (object), attrs (object of safe attributes). Children: nodes or
 * strings (as text).
 */
function h(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = String(v);
      else if (k === "for") e.htmlFor = v;
      else if (k === "style") Object.assign(e.style, v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k === "attrs") for (const [a, av] of Object.entries(v)) e.setAttribute(a, String(av));
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e[k] = v;
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces an element's children, skipping null / false (which replaceChildren would print). */
function put(e, ...children) {
  e.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

const TOKEN_KEY = "gaia-token";
const S = {
  token: localStorage.getItem(TOKEN_KEY),
  who: null,
  view: null,
  lastEventId: 0,
};

const ago = (ms) => {
  if (!ms) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
};
const dur = (ms) => {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
};
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
const mib = (mb) => (mb >= 1024 ? `${(mb / 1024).toFixed(mb >= 10240 ? 0 : 1)} GiB` : `${mb} MiB`);

function describe(spec) {
  if (!spec) return "";
  switch (spec.kind || "experiment") {
    case "experiment":
      return `${spec.method || "?"} ${spec.env || "CartPole-v1"} ${fmtNum(spec.max_evals || 100000)} evals${spec.seed !== undefined && spec.seed !== null ? ` seed ${spec.seed}` : ""}`;
    case "command":
      return (spec.argv || []).join(" ");
    default: {
      const inp = spec.input || "";
      return `${spec.kind} ${JSON.stringify(inp.length > 40 ? inp.slice(0, 40) + "…" : inp)}`;
    }
  }
}
const jobTitle = (j) => j.spec.name || describe(j.spec);
const isAdmin = () => S.who && S.who.scope === "admin";
const TERMINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost"]);

/**
 * Whether job snapshot `b` is at least as new as `a`. Snapshots arrive on two paths (the answer
 * to a request, and the event stream), so an older one can arrive last: a job that ended never
 * goes back to running, and progress never shrinks within an attempt.
 */
function newer(a, b) {
  if (!a) return true;
  if (a.attempt !== b.attempt) return b.attempt > a.attempt;
  if (TERMINAL.has(a.state) && !TERMINAL.has(b.state)) return false;
  return (b.progress?.rows ?? 0) >= (a.progress?.rows ?? 0);
}

function badge(state) {
  return h("span", { class: `badge st-${state}`, text: state.replace("_", " ") });
}

/** A button that needs an admin token: disabled with the reason as its tooltip otherwise. */
function adminButton(label, props) {
  const b = h("button", Object.assign({ type: "button", class: "btn" }, props, { text: label }));
  if (!isAdmin()) {
    b.disabled = true;
    const why = `needs an admin token (this token's scope is ${S.who ? S.who.scope : "unknown"})`;
    b.title = why;
    return h("span", { class: "why", title: why }, b);
  }
  return b;
}

function toast(msg, kind = "info") {
  const t = h("div", { class: `toast ${kind}`, text: msg, attrs: { role: "status" } });
  $("#toasts").append(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET/POST an API path with the token; answers JSON, throws ApiError with the server's message. */
async function api(path, opts = {}) {
  const headers = { Authorization: `Bearer ${S.token}` };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method: opts.method || (opts.body !== undefined ? "POST" : "GET"),
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (r.status === 401 && !opts.noLogout) {
    logout("The server refused this token (401). Log in again.");
    throw new ApiError(401, "unauthorized");
  }
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

/** Downloads an API path (with the token in a header, not the URL) under `name`. */
async function download(path, name) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${S.token}` } });
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      msg = (await r.json()).error || msg;
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, msg);
  }
  saveBlob(await r.blob(), name);
}

function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
const toCsv = (header, rows) => [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";

// ---- live updates: one EventSource ------------------------------------------------------------

const live = {
  es: null,
  needs: { rows: false, logs: false, job: null },
  url: "",
  retry: 1000,
  timer: null,
  lastMessage: 0,
  connected: false,
  wasDown: false,

  want(needs) {
    const n = Object.assign({ rows: false, logs: false, job: null }, needs);
    const same = n.rows === this.needs.rows && n.logs === this.needs.logs && n.job === this.needs.job;
    this.needs = n;
    if (!same || !this.es) this.open();
  },

  open() {
    this.close();
    if (!S.token) return;
    const q = new URLSearchParams({ stream: "1", token: S.token, rows: this.needs.rows ? "1" : "0", logs: this.needs.logs ? "1" : "0" });
    if (this.needs.job) q.set("job", String(this.needs.job));
    if (S.lastEventId) q.set("after", String(S.lastEventId));
    const es = new EventSource(`/api/v1/events?${q}`);
    this.es = es;
    setConn("connecting");
    es.addEventListener("open", () => {
      if (es !== this.es) return;
      this.retry = 1000;
      this.connected = true;
      setConn("live");
      if (this.wasDown) {
        // Events are replayed from Last-Event-ID; rows, jobs and workers are not: refetch.
        this.wasDown = false;
        if (S.view && S.view.refresh) S.view.refresh();
      }
    });
    es.addEventListener("error", () => {
      if (es !== this.es) return;
      this.connected = false;
      this.wasDown = true;
      setConn("down");
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with an error (or is gone): reopen ourselves, with backoff.
        clearTimeout(this.timer);
        this.timer = setTimeout(async () => {
          try {
            await api("/api/v1/whoami");
          } catch (e) {
            if (e.status === 401) return;
          }
          if (es === this.es) this.open();
        }, this.retry);
        this.retry = Math.min(this.retry * 2, 30_000);
      }
    });
    const on = (type, fn) =>
      es.addEventListener(type, (e) => {
        if (es !== this.es) return;
        this.lastMessage = Date.now();
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        fn(data, e);
      });
    on("event", (ev) => {
      if (ev.id <= S.lastEventId) return;
      S.lastEventId = ev.id;
      dispatch("event", ev);
    });
    on("rows", (m) => dispatch("rows", m));
    on("logs", (m) => dispatch("logs", m));
    on("job", (j) => dispatch("job", j));
    on("worker", (w) => dispatch("worker", w));
    on("resync", () => S.view && S.view.refresh && S.view.refresh());
  },

  close() {
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
    this.connected = false;
  },
};

function dispatch(type, msg) {
  liveLog.push(type, msg);
  if (S.view && S.view.onLive) S.view.onLive(type, msg);
}

function setConn(state) {
  const c = $("#conn");
  c.className = `conn ${state}`;
  c.title = { live: "Live: updates arrive as they happen", connecting: "Connecting to the event stream…", down: "Connection lost: reconnecting and catching up" }[state] || state;
  $("#conn-text").textContent = { live: "live", connecting: "connecting", down: "reconnecting" }[state] || state;
}

/** A debounced call: runs `fn` once, `ms` after the last request. */
function debounce(fn, ms) {
  let t = null;
  const d = () => {
    clearTimeout(t);
    t = setTimeout(fn, ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}

// ---- the live debug feed (kept across pages, bounded) ----------------------------------------

const liveLog = {
  items: [],
  max: 2000,
  listeners: new Set(),
  push(type, msg) {
    const item = { at: Date.now(), type, msg };
    this.items.push(item);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
    for (const l of this.listeners) l(item);
  },
};

// ---- login / logout -----------------------------------------------------------------------------

function logout(message) {
  localStorage.removeItem(TOKEN_KEY);
  $("#toasts").replaceChildren();
  S.token = null;
  S.who = null;
  S.lastEventId = 0;
  live.close();
  if (S.view && S.view.destroy) S.view.destroy();
  S.view = null;
  showLogin(message);
}

function showLogin(message) {
  document.body.classList.add("logged-out");
  $("#whoami").textContent = "";
  const input = h("input", { type: "password", id: "token", name: "token", placeholder: "paste a token", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error", id: "login-error", text: message || "", attrs: { role: "alert" } });
  const form = h(
    "form",
    { class: "login card", id: "login" },
    h("h2", { text: "Log in to GAIA" }),
    h("p", { class: "muted", text: "Paste an API token. gaia serve printed the admin token when it started; `gaia token create --scope read --name NAME` makes a read-only one." }),
    h("label", { for: "token", text: "Token" }),
    input,
    err,
    h("button", { type: "submit", class: "btn primary", text: "Log in" }),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    err.textContent = "";
    try {
      S.token = t;
      const who = await api("/api/v1/whoami", { noLogout: true });
      localStorage.setItem(TOKEN_KEY, t);
      S.who = who;
      start();
    } catch (x) {
      S.token = null;
      err.textContent =
        x.status === 401
          ? "The server does not know this token."
          : x.status === 403
            ? "This token may not read (a worker token?): use a read or admin token."
            : `Could not log in: ${x.message}`;
    }
  });
  $("#app").replaceChildren(form);
  input.focus();
}

async function start() {
  document.body.classList.remove("logged-out");
  if (!S.who) {
    try {
      S.who = await api("/api/v1/whoami", { noLogout: true });
    } catch (e) {
      if (e.status === 401 || e.status === 403) return logout(e.status === 401 ? "This token is no longer valid. Log in again." : "This token may not read the dashboard.");
      $("#app").replaceChildren(h("p", { class: "error", text: `Cannot reach the server: ${e.message}` }));
      setTimeout(start, 3000);
      return;
    }
  }
  $("#whoami").replaceChildren(h("span", { class: `scope sc-${S.who.scope}`, text: S.who.scope, title: `token "${S.who.name}" · gaia ${S.who.version}` }));
  route();
}

// ---- routing ------------------------------------------------------------------------------------

const ROUTES = [
  [/^\/?$/, () => overviewView()],
  [/^\/jobs\/(\d+)$/, (m) => jobView(Number(m[1]))],
  [/^\/jobs$/, (m, q) => jobsView(q)],
  [/^\/charts$/, (m, q) => chartsView(q)],
  [/^\/live$/, () => liveView()],
  [/^\/submit$/, () => submitView()],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  return { path, q: new URLSearchParams(qs || "") };
}

function route() {
  if (!S.token || !S.who) return;
  const { path, q } = parseHash();
  if (S.view && S.view.destroy) S.view.destroy();
  S.view = null;
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").replace(/^#/, "");
    a.classList.toggle("active", target === "/" ? path === "/" || path === "" : path.startsWith(target));
  }
  for (const [re, make] of ROUTES) {
    const m = path.match(re);
    if (m) {
      S.view = make(m, q);
      $("#app").replaceChildren(S.view.el);
      if (S.view.init) S.view.init();
      live.want(S.view.needs || {});
      window.scrollTo(0, 0);
      return;
    }
  }
  $("#app").replaceChildren(h("div", { class: "card" }, h("h2", { text: "Not found" }), h("p", {}, "No page at ", h("code", { text: location.hash }), ". ", h("a", { href: "#/", text: "Go to the overview" }))));
}

function section(title, ...extra) {
  const body = h("div", { class: "section-body" });
  const el = h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", { text: title }), h("div", { class: "section-tools" }, ...extra)), body);
  return { el, body };
}

// ---- overview -----------------------------------------------------------------------------------

function progressBar(frac, label) {
  const f = Math.max(0, Math.min(1, frac || 0));
  const fill = h("span", { class: "fill" });
  fill.style.width = `${(f * 100).toFixed(1)}%`;
  return h("span", { class: "progress", title: label || `${(f * 100).toFixed(1)}%` }, fill, h("span", { class: "progress-text", text: label || `${(f * 100).toFixed(0)}%` }));
}

function eta(job) {
  const f = job.progress && job.progress.fraction;
  if (job.state !== "running" || !job.started_at || !f || f <= 0 || f >= 1) return null;
  const spent = Date.now() - job.started_at;
  return (spent * (1 - f)) / f;
}

function usageBar(label, pct) {
  const p = Math.max(0, Math.min(100, pct || 0));
  const fill = h("span", { class: "fill" });
  fill.style.width = `${p}%`;
  if (p > 85) fill.classList.add("hot");
  return h("div", { class: "ubar" }, h("span", { class: "ulabel", text: label }), h("span", { class: "utrack" }, fill), h("span", { class: "uval", text: `${Math.round(p)}%` }));
}

/** A worker's card; `mini` (many workers) keeps one line of facts and one row of bars. */
function workerCard(w, mini = false) {
  const hw = w.hardware || {};
  const gpus = hw.gpus || [];
  const usage = w.usage || {};
  const gpuPct = usage.gpu_percent || [];
  const hwText = [hw.cpu_cores ? `${hw.cpu_cores} cores` : null, hw.memory_mb ? mib(hw.memory_mb) : null, gpus.length ? `${gpus.length}× ${gpus[0].name}` : "no GPU", hw.os && hw.arch ? `${hw.os}/${hw.arch}` : null].filter(Boolean).join(" · ");
  const hwTitle = [hw.hostname, hw.cpu_model, hwText, ...gpus.map((g) => `GPU${g.index}: ${g.name} ${g.memory_mb ? mib(g.memory_mb) : ""}`)].filter(Boolean).join("\n");
  const bars = mini
    ? h("div", { class: "ubars mini" }, usageBar("CPU", usage.cpu_percent), usageBar("RAM", usage.memory_percent), gpus.length ? usageBar(gpus.length > 1 ? `GPU×${gpus.length}` : "GPU", gpuPct.length ? gpuPct.reduce((a, b) => a + b, 0) / gpuPct.length : 0) : null)
    : h("div", { class: "ubars" }, usageBar("CPU", usage.cpu_percent), usageBar("RAM", usage.memory_percent), ...gpus.map((g, i) => usageBar(`GPU${g.index ?? i}`, gpuPct[i])));
  const running = h("span", { class: "wjobs" }, (w.running || []).length ? (mini ? "" : "running ") : "no jobs", ...(w.running || []).map((id) => h("a", { href: `#/jobs/${id}`, class: "jobref", text: `#${id}` })));
  const seen = h("span", { class: "seen", dataset: { seen: String(w.last_seen) }, text: `seen ${ago(w.last_seen)}` });
  return h(
    "div",
    { class: `wcard ws-${w.state}${mini ? " mini" : ""}`, dataset: { worker: w.id }, title: mini ? hwTitle : undefined },
    h("div", { class: "wtop" }, h("span", { class: "wname", text: w.name, title: `${w.name} (${w.id})` }), h("span", { class: `wstate ws-${w.state}`, text: w.state })),
    mini
      ? h("div", { class: "wmeta muted" }, seen, " · ", running)
      : h("div", { class: "wmeta muted" }, seen, ` · v${w.version || "?"}`, w.update_available ? h("span", { class: "upd", text: " update available", title: "Another release is promoted; the worker moves to it between jobs if it runs with --auto-update" }) : null, w.update_error ? h("span", { class: "upd-err", text: " update refused", title: w.update_error }) : null, ` · ${w.slots || 1} slot${w.slots === 1 ? "" : "s"}`),
    mini ? null : h("div", { class: "whw muted", text: hwText, title: hwTitle }),
    bars,
    mini ? null : h("div", {}, running),
  );
}

function jobRow(j, opts = {}) {
  const p = j.progress || {};
  // A job that succeeded is done, even when it stopped early (solved) short of its budget.
  const frac = j.state === "succeeded" ? 1 : (p.fraction ?? 0);
  const evals = p.evals !== null && p.evals !== undefined ? `${fmtNum(p.evals)} / ${fmtNum(j.spec.max_evals || 0)}` : null;
  const e = eta(j);
  const cancel = !TERMINAL.has(j.state)
    ? adminButton(j.cancel_requested ? "…" : "✕", {
        class: "btn small danger icon",
        title: `Cancel job ${j.id}`,
        attrs: { "aria-label": `Cancel job ${j.id}` },
        disabled: j.cancel_requested,
        dataset: { cancel: String(j.id) },
        onclick: async (ev) => {
          ev.preventDefault();
          ev.stopPropagation();
          if (!confirm(`Cancel job ${j.id}?`)) return;
          try {
            await api(`/api/v1/jobs/${j.id}/cancel`, { method: "POST" });
            toast(`Job ${j.id}: cancel sent`);
          } catch (x) {
            toast(`Cancel failed: ${x.message}`, "error");
          }
        },
      })
    : null;
  const cells = [
    h("td", { class: "num" }, h("a", { href: `#/jobs/${j.id}`, text: `#${j.id}` })),
    h("td", { class: "jname" }, h("a", { href: `#/jobs/${j.id}`, class: "plain", text: jobTitle(j), title: describe(j.spec) })),
    h("td", {}, badge(j.state)),
    h("td", { class: "muted wk", text: j.worker_name || (j.state === "queued" ? `prio ${j.spec.priority || 0}` : "–") }),
    h("td", { class: "prog" }, j.state === "queued" ? h("span", { class: "muted", text: `waiting ${dur(Date.now() - j.submitted_at)}` }) : progressBar(frac, evals ? `${evals}` : undefined)),
    h("td", { class: "num", text: fmtNum(p.best_ever ?? p.best) }),
    h("td", { class: "num muted", title: e !== null ? "estimated time left" : "run time", text: e !== null ? dur(e) : j.started_at ? dur((j.finished_at || Date.now()) - j.started_at) : "–" }),
  ];
  if (opts.cancel !== false) cells.push(h("td", { class: "act" }, cancel));
  return h("tr", { dataset: { job: String(j.id) }, class: `st-row-${j.state}` }, ...cells);
}

function overviewView() {
  const tiles = h("div", { class: "tiles" });
  const workers = section("Workers", h("span", { class: "muted", id: "workers-count" }));
  workers.el.classList.add("wide");
  const wgrid = h("div", { class: "wgrid", id: "workers" });
  const offlineToggle = h("button", { type: "button", class: "btn small ghost", hidden: true });
  const moreToggle = h("button", { type: "button", class: "btn small ghost", hidden: true });
  moreToggle.addEventListener("click", () => {
    st.showAll = !st.showAll;
    renderWorkers();
  });
  workers.body.append(wgrid, h("div", { class: "wtoggles" }, moreToggle, offlineToggle));
  const queue = section("Queue", h("a", { href: "#/jobs", class: "btn small ghost", text: "All jobs" }));
  const qtable = h("table", { class: "grid", id: "queue" });
  const qhead = h("thead", {}, h("tr", {}, ...["id", "job", "state", "worker", "progress", "best-ever", "ETA", ""].map((t) => h("th", { text: t }))));
  const qbody = h("tbody");
  const qfoot = h("p", { class: "muted small" });
  qtable.append(qhead, qbody);
  queue.body.append(h("div", { class: "scroll-x" }, qtable), qfoot);
  const best = section("Best per environment and method", h("a", { href: "#/charts", class: "btn small ghost", text: "Charts" }));
  const btable = h("table", { class: "grid", id: "best" });
  best.body.append(h("div", { class: "scroll-x" }, btable));
  const activity = section("Activity");
  const alist = h("ol", { class: "activity", id: "activity" });
  activity.body.append(alist);
  const el = h("div", { class: "overview" }, tiles, workers.el, h("div", { class: "cols" }, h("div", { class: "col-main" }, queue.el, best.el), h("div", { class: "col-side" }, activity.el)));

  const st = { workers: new Map(), running: new Map(), queued: new Map(), queuedTotal: 0, runningTotal: 0, showOffline: false, summary: null };

  function renderTiles() {
    const s = st.summary;
    if (!s) return;
    const c = s.jobs;
    const w = s.workers;
    const tile = (label, n, cls, href) => h("a", { class: `tile ${cls}`, href }, h("span", { class: "tn", text: String(n) }), h("span", { class: "tl", text: label }));
    put(tiles, 
      tile("queued", c.queued, "st-queued", "#/jobs?state=queued"),
      tile("running", c.running, "st-running", "#/jobs?state=running"),
      tile("succeeded", c.succeeded, "st-succeeded", "#/jobs?state=succeeded"),
      tile("failed", c.failed + c.timed_out, "st-failed", "#/jobs?state=failed"),
      tile("cancelled", c.cancelled, "st-cancelled", "#/jobs?state=cancelled"),
      tile("lost", c.lost, "st-lost", "#/jobs?state=lost"),
      tile("workers online", `${w.idle + w.busy + w.draining} / ${w.idle + w.busy + w.draining + w.offline}`, "tile-workers", "#/"),
    );
  }

  function renderWorkers() {
    const all = [...st.workers.values()];
    const order = { busy: 0, idle: 1, draining: 2, offline: 3 };
    all.sort((a, b) => order[a.state] - order[b.state] || a.name.localeCompare(b.name));
    const offline = all.filter((w) => w.state === "offline");
    let shown = st.showOffline || offline.length <= 4 ? all : all.filter((w) => w.state !== "offline");
    // Many workers: compact cards, and the first few dozen until asked for all.
    const mini = all.length > 8;
    const hiddenCount = st.showAll ? 0 : Math.max(0, shown.length - 30);
    if (hiddenCount) shown = shown.slice(0, 30);
    wgrid.classList.toggle("mini", mini);
    put(wgrid, ...shown.map((w) => workerCard(w, mini)));
    moreToggle.hidden = !hiddenCount && !st.showAll;
    moreToggle.textContent = st.showAll ? "Show fewer" : `Show ${hiddenCount} more`;
    if (!all.length) wgrid.append(h("p", { class: "muted", text: "No worker has registered yet. Start one with: gaia work --server URL --token TOKEN" }));
    else if (!shown.length) wgrid.append(h("p", { class: "muted", text: `No worker is online; ${offline.length} are offline.` }));
    offlineToggle.hidden = offline.length <= 4;
    offlineToggle.textContent = st.showOffline ? `Hide ${offline.length} offline` : `Show ${offline.length} offline`;
    $("#workers-count", workers.el).textContent = `${all.length - offline.length} online · ${offline.length} offline`;
  }
  offlineToggle.addEventListener("click", () => {
    st.showOffline = !st.showOffline;
    renderWorkers();
  });

  function renderQueue() {
    // Bounded however many jobs the stream has told us about; the totals say how many more.
    const running = [...st.running.values()].sort((a, b) => a.id - b.id).slice(0, 30);
    const queued = [...st.queued.values()].sort((a, b) => (b.spec.priority || 0) - (a.spec.priority || 0) || a.id - b.id).slice(0, 15);
    st.runningTotal = Math.max(st.runningTotal, st.running.size);
    st.queuedTotal = Math.max(st.queuedTotal, st.queued.size);
    put(qbody, ...running.map((j) => jobRow(j)), ...queued.map((j) => jobRow(j)));
    if (!running.length && !queued.length) qbody.append(h("tr", {}, h("td", { colSpan: 8, class: "muted", text: "Nothing queued or running." })));
    const more = [];
    if (st.runningTotal > running.length) more.push(`${st.runningTotal - running.length} more running`);
    if (st.queuedTotal > queued.length) more.push(`${st.queuedTotal - queued.length} more queued (the newest are shown)`);
    put(qfoot, ...(more.length ? [`${more.join(" · ")} — `, h("a", { href: st.runningTotal > running.length ? "#/jobs?state=running" : "#/jobs?state=queued", text: "see all" })] : []));
  }

  function renderBest() {
    const s = st.summary;
    if (!s) return;
    const head = h("tr", {}, ...["environment", "method", "best", "job", "mean ± sd (finished)", "median", "runs", "running"].map((t) => h("th", { text: t })));
    const rows = s.groups.map((g) =>
      h(
        "tr",
        {},
        h("td", { text: g.env }),
        h("td", { text: g.method }),
        h("td", { class: "num strong", text: fmtNum(g.best) }),
        h("td", { class: "num" }, g.best_job ? h("a", { href: `#/jobs/${g.best_job}`, text: `#${g.best_job}` }) : "–"),
        h("td", { class: "num", text: g.mean !== null && g.mean !== undefined ? `${fmtNum(g.mean)} ± ${fmtNum(g.std)}` : "–" }),
        h("td", { class: "num", text: fmtNum(g.median) }),
        h("td", { class: "num", text: `${g.finished} / ${g.jobs}` }),
        h("td", { class: "num", text: String(g.running) }),
      ),
    );
    put(btable, h("thead", {}, head), h("tbody", {}, ...rows));
    if (!rows.length) btable.append(h("tbody", {}, h("tr", {}, h("td", { colSpan: 8, class: "muted", text: "No experiment has reported a score yet." }))));
  }

  function eventItem(ev) {
    const cls = ev.kind.includes("failed") || ev.kind.includes("lost") || ev.kind.includes("timed_out") ? "bad" : ev.kind.includes("succeeded") ? "good" : ev.kind.includes("worker") ? "wk" : "";
    return h("li", { class: `ev ${cls}`, dataset: { id: String(ev.id) } }, h("time", { text: clock(ev.at), title: when(ev.at) }), h("span", { class: "ekind", text: ev.kind.replace(/_/g, " ") }), ev.job ? h("a", { href: `#/jobs/${ev.job}`, class: "evmsg plain", text: ev.message }) : h("span", { class: "evmsg", text: ev.message }));
  }

  async function loadSummary() {
    try {
      st.summary = await api("/api/v1/summary");
      renderTiles();
      renderBest();
    } catch (e) {
      if (e.status !== 401) toast(`Summary: ${e.message}`, "error");
    }
  }
  const summarySoon = debounce(loadSummary, 1500);

  async function loadQueue() {
    const [r, q] = await Promise.all([api("/api/v1/jobs?state=running&limit=30"), api("/api/v1/jobs?state=queued&limit=15")]);
    st.running = new Map(r.jobs.map((j) => [j.id, j]));
    st.queued = new Map(q.jobs.map((j) => [j.id, j]));
    st.runningTotal = r.total;
    st.queuedTotal = q.total;
    renderQueue();
  }
  const queueSoon = debounce(() => loadQueue().catch(() => {}), 500);
  const queueRender = debounce(renderQueue, 250);
  const workersRender = debounce(renderWorkers, 250);

  async function refresh() {
    const [w, ev] = await Promise.all([api("/api/v1/workers"), api("/api/v1/events?limit=60"), loadQueue(), loadSummary()]);
    st.workers = new Map(w.workers.map((x) => [x.id, x]));
    renderWorkers();
    put(alist, ...ev.events.slice().reverse().map(eventItem));
    if (ev.events.length) S.lastEventId = Math.max(S.lastEventId, ev.events[ev.events.length - 1].id);
  }

  const ticker = setInterval(() => {
    for (const s of el.querySelectorAll("[data-seen]")) s.textContent = `seen ${ago(Number(s.dataset.seen))}`;
  }, 5000);

  return {
    el,
    needs: { rows: false, logs: false },
    init() {
      refresh().catch((e) => e.status !== 401 && toast(`Overview: ${e.message}`, "error"));
    },
    refresh() {
      refresh().catch(() => {});
    },
    destroy() {
      clearInterval(ticker);
      summarySoon.cancel();
      queueSoon.cancel();
    },
    onLive(type, m) {
      if (type === "worker") {
        st.workers.set(m.id, m);
        workersRender();
      } else if (type === "job") {
        st.running.delete(m.id);
        st.queued.delete(m.id);
        if (m.state === "running") st.running.set(m.id, m);
        else if (m.state === "queued") st.queued.set(m.id, m);
        queueRender();
      } else if (type === "event") {
        alist.prepend(eventItem(m));
        while (alist.children.length > 200) alist.lastChild.remove();
        if (/submitted|requeued|started/.test(m.kind)) queueSoon();
        if (/^job_(submitted|succeeded|failed|cancelled|lost|timed_out|started|requeued)|jobs_submitted/.test(m.kind)) summarySoon();
        if (m.kind.startsWith("worker")) api("/api/v1/workers").then((w) => {
          st.workers = new Map(w.workers.map((x) => [x.id, x]));
          workersRender();
        }, () => {});
      }
    },
  };
}

// ---- jobs list ----------------------------------------------------------------------------------

function jobsView(q) {
  const state = q.get("state") || "";
  const study = q.get("study") || "";
  const before = q.get("before") || "";
  const stateSel = h("select", { id: "f-state", title: "Filter by state" }, h("option", { value: "", text: "any state" }), ...["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost"].map((s) => h("option", { value: s, text: s, selected: s === state })));
  const studyIn = h("input", { id: "f-study", placeholder: "study", value: study, size: 12 });
  const go = () => {
    const p = new URLSearchParams();
    if (stateSel.value) p.set("state", stateSel.value);
    if (studyIn.value.trim()) p.set("study", studyIn.value.trim());
    location.hash = `#/jobs${p.toString() ? "?" + p : ""}`;
  };
  stateSel.addEventListener("change", go);
  studyIn.addEventListener("change", go);
  const exportCsv = h("button", { type: "button", class: "btn small", id: "export-jobs-csv", text: "Summaries CSV", title: "One line per job matching the filter: spec, state, timings, final scores", onclick: () => exportAll("csv") });
  const exportJson = h("button", { type: "button", class: "btn small", id: "export-jobs-json", text: "Summaries JSON", title: "Every job matching the filter, as JSON", onclick: () => exportAll("json") });
  const compare = h("button", { type: "button", class: "btn small", text: "Compare selected", disabled: true, title: "Overlay the selected jobs' learning curves" });
  const serverExport = (url, name, label, title) =>
    h("button", { type: "button", class: "btn small ghost", text: label, title, onclick: () => download(url, name).catch((e) => toast(`Export failed: ${e.message}`, "error")) });
  const studyExports = study
    ? [
        serverExport(`/api/v1/studies/${encodeURIComponent(study)}/export.csv`, `study-${study}.csv`, "Study rows CSV", "Every row of every job of this study, from the server"),
        serverExport(`/api/v1/studies/${encodeURIComponent(study)}/export.png`, `study-${study}.png`, "Study PNG", "The study's method comparison, drawn by the server"),
        serverExport(`/api/v1/studies/${encodeURIComponent(study)}/files.zip`, `study-${study}-files.zip`, "Files ZIP", "Every result file of the study"),
      ]
    : [serverExport("/api/v1/export.csv", "gaia-rows.csv", "All rows CSV", "Every row of every job (can be large), streamed by the server")];
  const sec = section("Jobs", stateSel, studyIn, compare, exportCsv, exportJson, ...studyExports);
  const table = h("table", { class: "grid", id: "jobs" });
  const foot = h("div", { class: "pager" });
  sec.body.append(h("div", { class: "scroll-x" }, table), foot);
  const selected = new Set();
  compare.addEventListener("click", () => (location.hash = `#/charts?jobs=${[...selected].join(",")}`));

  function filterQuery() {
    const p = new URLSearchParams();
    if (state) p.set("state", state);
    if (study) p.set("study", study);
    return p;
  }

  async function exportAll(fmt) {
    const all = [];
    let cursor = null;
    toast("Collecting jobs…");
    try {
      for (;;) {
        const p = filterQuery();
        p.set("limit", "1000");
        if (cursor) p.set("before", String(cursor));
        const page = await api(`/api/v1/jobs?${p}`);
        all.push(...page.jobs);
        if (!page.next_before || !page.jobs.length) break;
        cursor = page.next_before;
      }
    } catch (e) {
      return toast(`Export failed: ${e.message}`, "error");
    }
    const name = `gaia-jobs${state ? "-" + state : ""}${study ? "-" + study : ""}`;
    if (fmt === "json") return saveBlob(new Blob([JSON.stringify(all, null, 2)], { type: "application/json" }), `${name}.json`);
    const header = ["id", "name", "kind", "method", "env", "max_evals", "seed", "study", "priority", "state", "attempt", "worker", "submitted_at", "started_at", "finished_at", "duration_s", "rows", "generation", "evals", "best", "best_ever", "mean", "sigma", "exit_code", "warnings", "errors", "params", "error"];
    const rows = all.map((j) => {
      const p = j.progress || {};
      const d = j.started_at ? ((j.finished_at || Date.now()) - j.started_at) / 1000 : null;
      return [j.id, j.spec.name, j.spec.kind, j.spec.method, j.spec.env, j.spec.max_evals, j.spec.seed, j.spec.study, j.spec.priority, j.state, j.attempt, j.worker_name, j.submitted_at && new Date(j.submitted_at).toISOString(), j.started_at && new Date(j.started_at).toISOString(), j.finished_at && new Date(j.finished_at).toISOString(), d, p.rows, p.generation, p.evals, p.best, p.best_ever, p.mean, p.sigma, j.exit_code, j.warnings, j.errors, j.spec.params && Object.keys(j.spec.params).length ? j.spec.params : "", j.error];
    });
    saveBlob(new Blob([toCsv(header, rows)], { type: "text/csv" }), `${name}.csv`);
  }

  async function load() {
    const p = filterQuery();
    p.set("limit", "100");
    if (before) p.set("before", before);
    const page = await api(`/api/v1/jobs?${p}`);
    const head = h("tr", {}, h("th", {}), ...["id", "job", "state", "worker", "progress", "best-ever", "time", ""].map((t) => h("th", { text: t })));
    const body = h("tbody");
    for (const j of page.jobs) {
      const row = jobRow(j);
      const cb = h("input", { type: "checkbox", title: "Select for comparison", checked: selected.has(j.id) });
      cb.addEventListener("change", () => {
        if (cb.checked) selected.add(j.id);
        else selected.delete(j.id);
        compare.disabled = selected.size === 0;
        compare.textContent = selected.size ? `Compare ${selected.size} selected` : "Compare selected";
      });
      row.prepend(h("td", {}, cb));
      body.append(row);
    }
    if (!page.jobs.length) body.append(h("tr", {}, h("td", { colSpan: 9, class: "muted", text: "No jobs match." })));
    put(table, h("thead", {}, head), body);
    const first = page.jobs.length ? page.jobs[0].id : null;
    const pq = (b) => {
      const x = filterQuery();
      if (b) x.set("before", String(b));
      return `#/jobs${x.toString() ? "?" + x : ""}`;
    };
    put(foot, 
      h("span", { class: "muted", text: `${page.total} job${page.total === 1 ? "" : "s"}${page.jobs.length ? ` · showing #${page.jobs[page.jobs.length - 1].id}–#${first}` : ""}` }),
      before ? h("a", { class: "btn small ghost", href: pq(null), text: "⟨ Newest" }) : null,
      page.next_before ? h("a", { class: "btn small ghost", href: pq(page.next_before), text: "Older ⟩" }) : null,
    );
  }
  const soon = debounce(() => load().catch(() => {}), 800);
  return {
    el: sec.el,
    needs: {},
    init: () => load().catch((e) => toast(`Jobs: ${e.message}`, "error")),
    refresh: soon,
    onLive(type, m) {
      if (type === "job") {
        const tr = table.querySelector(`tr[data-job="${m.id}"]`);
        if (tr) {
          const nr = jobRow(m);
          const cb = tr.firstChild;
          nr.prepend(cb);
          tr.replaceWith(nr);
        }
      } else if (type === "event" && /submitted/.test(m.kind) && !before) soon();
    },
  };
}

// ---- curves: fetching rows ---------------------------------------------------------------------

const POINTS = 2000;

/** Fetches a job's rows downsampled to POINTS (and only the x range when zoomed). */
async function fetchRows(id, x, range) {
  const p = new URLSearchParams({ points: String(POINTS), x });
  if (range) {
    p.set("from", String(range[0]));
    p.set("to", String(range[1]));
  }
  return api(`/api/v1/jobs/${id}/rows?${p}`);
}

const xOf = (r, axis) => (axis === "evals" ? r.evals : axis === "generation" ? r.generation : r.seq);

/** Turns rows into [x, y] points of one metric, sorted by x (downsampled rows are in order). */
function pointsOf(rows, axis, metric) {
  const out = [];
  for (const r of rows) {
    const x = xOf(r, axis);
    if (x === undefined || x === null) continue;
    const y = metric in r ? r[metric] : (r.metrics || []).find((m) => m[0] === metric)?.[1];
    if (y === undefined || y === null) continue;
    out.push([x, y]);
  }
  out.sort((a, b) => a[0] - b[0]);
  return out;
}

// ---- job page -----------------------------------------------------------------------------------

function kv(rows) {
  return h("dl", { class: "kv" }, ...rows.filter(Boolean).flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v instanceof Node ? v : String(v ?? "–"))]));
}

function jobView(id) {
  const st = { job: null, rows: [], attempt: null, axis: "generation", range: null, logs: [], level: "all", follow: true, total: 0, sinceFetch: 0 };
  const head = h("div", { class: "jobhead card" });
  const details = section("Details");
  const curves = section("Learning curve");
  const sigmaSec = section("Step size σ");
  const logsSec = section("Logs");
  const filesSec = section("Result files");
  const axisSel = h("select", { title: "x axis", id: "x-axis" }, ...["generation", "evals", "seq"].map((a) => h("option", { value: a, text: a, selected: a === st.axis })));
  curves.el.querySelector(".section-tools").append(h("label", { class: "muted small", text: "x " }), axisSel);
  const chart = new LineChart(curves.body, { title: "best-ever, best and mean · drag to zoom", exportTitle: `Job ${id}`, xLabel: st.axis, height: 300, file: `job-${id}-curve`, alwaysLegend: true, onZoom: (r) => zoom(r) });
  const sigma = new LineChart(sigmaSec.body, { title: "σ, log scale", exportTitle: `Job ${id} σ`, xLabel: st.axis, height: 160, logY: true, file: `job-${id}-sigma`, onZoom: (r) => zoom(r) });
  axisSel.addEventListener("change", () => {
    st.axis = axisSel.value;
    chart.opts.xLabel = sigma.opts.xLabel = st.axis;
    st.range = null;
    chart.view = sigma.view = null;
    chart.resetBtn.hidden = sigma.resetBtn.hidden = true;
    loadRows();
  });
  const counts = h("span", { class: "logcounts" });
  const levelBtns = ["all", "warning", "error"].map((l) => h("button", { type: "button", class: "btn small ghost", dataset: { level: l }, text: l === "all" ? "all" : l + "s", attrs: { "aria-pressed": String(l === st.level) }, onclick: () => setLevel(l) }));
  const followCb = h("input", { type: "checkbox", checked: true, id: "follow", onchange: () => (st.follow = followCb.checked) });
  logsSec.el.querySelector(".section-tools").append(counts, ...levelBtns, h("label", { class: "small" }, followCb, " follow"));
  const logBox = h("div", { class: "logs", id: "logs", attrs: { role: "log", "aria-live": "off" } });
  const earlier = h("button", { type: "button", class: "btn small ghost", text: "Load earlier lines", hidden: true });
  logsSec.body.append(earlier, logBox);
  const el = h("div", { class: "jobpage" }, head, h("div", { class: "cols" }, h("div", { class: "col-main" }, curves.el, sigmaSec.el, logsSec.el), h("div", { class: "col-side" }, details.el, filesSec.el)));

  function series(rows) {
    const m = [
      ["best_ever", "best-ever", PALETTE[0], false, 2],
      ["best", "best", PALETTE[2], false, 1.2],
      ["mean", "mean", PALETTE[4], true, 1.2],
    ];
    chart.setSeries(m.map(([k, label, color, dash, width]) => ({ id: k, label, color, dash, width, points: pointsOf(rows, st.axis, k) })).filter((s) => s.points.length));
    sigma.setSeries([{ id: "sigma", label: "σ", color: PALETTE[3], points: pointsOf(rows, st.axis, "sigma") }]);
  }

  async function loadRows() {
    if (!st.job || st.job.attempt === 0) return series([]);
    try {
      const r = await fetchRows(id, st.axis, st.range);
      st.rows = r.rows;
      st.attempt = r.attempt;
      st.total = r.total;
      st.sinceFetch = 0;
      series(st.rows);
    } catch (e) {
      toast(`Rows: ${e.message}`, "error");
    }
  }

  function zoom(range) {
    st.range = range;
    // Keep both charts on the same range.
    for (const c of [chart, sigma]) {
      c.view = range;
      c.resetBtn.hidden = !range;
    }
    loadRows();
  }

  function renderHead() {
    const j = st.job;
    chart.opts.exportTitle = `Job ${j.id} · ${jobTitle(j)}`;
    sigma.opts.exportTitle = `Job ${j.id} · ${jobTitle(j)} · σ`;
    const p = j.progress || {};
    const e = eta(j);
    const exp = (fmt) =>
      h("button", {
        type: "button",
        class: "btn small",
        text: fmt.toUpperCase(),
        title: `Download this job's rows as ${fmt.toUpperCase()}`,
        dataset: { export: fmt },
        onclick: () => exportJob(fmt),
      });
    put(head, 
      h(
        "div",
        { class: "jobtitle" },
        h("span", { class: "jid", text: `#${j.id}` }),
        h("h1", { id: "job-title", text: jobTitle(j) }),
        badge(j.state),
        j.cancel_requested ? h("span", { class: "muted", text: "cancel requested" }) : null,
      ),
      h(
        "div",
        { class: "jobbar" },
        j.state === "running" ? progressBar(p.fraction, p.evals !== undefined && p.evals !== null ? `${fmtNum(p.evals)} / ${fmtNum(j.spec.max_evals)} evals` : undefined) : null,
        h("span", { class: "stat" }, h("b", { text: fmtNum(p.best_ever ?? p.best) }), " best-ever"),
        h("span", { class: "stat" }, h("b", { text: p.generation ?? "–" }), " generations"),
        h("span", { class: "stat" }, h("b", { text: dur(j.started_at ? (j.finished_at || Date.now()) - j.started_at : null) }), " run time"),
        e !== null ? h("span", { class: "stat" }, h("b", { text: dur(e) }), " left") : null,
        h("span", { class: "grow" }),
        h("span", { class: "muted small", text: "Export" }),
        exp("csv"),
        exp("json"),
        exp("png"),
        !TERMINAL.has(j.state) ? adminButton(j.cancel_requested ? "Cancelling…" : "Cancel job", { class: "btn danger", id: "cancel-job", disabled: j.cancel_requested, onclick: cancelJob }) : null,
      ),
      p.status ? h("p", { class: "muted", text: `status: ${p.status}` }) : null,
      j.error ? h("pre", { class: "errorbox", text: j.error }) : null,
    );
  }

  async function cancelJob() {
    if (!confirm(`Cancel job ${id}?`)) return;
    try {
      const r = await api(`/api/v1/jobs/${id}/cancel`, { method: "POST" });
      // The stream may already have brought the job's end: keep the newer snapshot.
      if (newer(st.job, r.job)) st.job = r.job;
      renderAll();
      toast(`Job ${id}: cancel sent`);
    } catch (e) {
      toast(`Cancel failed: ${e.message}`, "error");
    }
  }

  async function exportJob(fmt) {
    const name = `job-${id}.${fmt}`;
    try {
      await download(`/api/v1/jobs/${id}/export.${fmt}`, name);
    } catch (e) {
      if (e.status !== 404 || !st.job) return toast(`Export failed: ${e.message}`, "error");
      // A server without the export routes: build the file here from the job's rows.
      if (fmt === "png") return chart.exportPNG();
      const r = await api(`/api/v1/jobs/${id}/rows`);
      if (fmt === "json") return saveBlob(new Blob([JSON.stringify({ job: st.job, rows: r.rows }, null, 2)], { type: "application/json" }), name);
      const extra = [...new Set(r.rows.flatMap((x) => (x.metrics || []).map((m) => m[0])))].sort();
      const cols = ["seq", "generation", "evals", "best", "best_ever", "mean", "sigma", "elapsed"];
      const rows = r.rows.map((x) => [...cols.map((c) => x[c]), ...extra.map((k) => (x.metrics || []).find((m) => m[0] === k)?.[1])]);
      saveBlob(new Blob([toCsv([...cols, ...extra], rows)], { type: "text/csv" }), name);
    }
  }

  function renderDetails() {
    const j = st.job;
    const s = j.spec;
    const req = s.requirements || {};
    const attempts = h("table", { class: "grid compact" }, h("thead", {}, h("tr", {}, ...["#", "worker", "started", "took", "outcome"].map((t) => h("th", { text: t })))), h("tbody", {}, ...(j.attempts || []).map((a) => h("tr", {}, h("td", { text: a.attempt }), h("td", { text: a.worker_name || a.worker }), h("td", { text: clock(a.started_at), title: when(a.started_at) }), h("td", { text: dur((a.ended_at || Date.now()) - a.started_at) }), h("td", { text: a.outcome || "running" })))));
    put(details.body, 
      kv([
        ["kind", s.kind],
        s.name ? ["name", s.name] : null,
        s.method ? ["method", s.method] : null,
        s.env ? ["environment", s.env] : null,
        s.max_evals ? ["max evals", fmtNum(s.max_evals)] : null,
        s.seed !== undefined && s.seed !== null ? ["seed", s.seed] : null,
        s.argv && s.argv.length ? ["argv", h("code", { text: s.argv.join(" ") })] : null,
        s.input !== undefined && s.input !== null ? ["input", h("code", { text: s.input })] : null,
        s.study ? ["study", h("a", { href: `#/jobs?study=${encodeURIComponent(s.study)}`, text: s.study })] : null,
        ["priority", s.priority || 0],
        ["requirements", `${req.gpus || 0} GPU · ${req.memory_mb ? mib(req.memory_mb) : "any memory"}${req.tags && req.tags.length ? " · tags " + req.tags.join(", ") : ""}`],
        ["attempts", `${j.attempt} of ${s.max_attempts}`],
        ["worker", j.worker_name || "–"],
        ["submitted", when(j.submitted_at)],
        ["started", when(j.started_at)],
        ["finished", when(j.finished_at)],
        s.timeout_secs ? ["timeout", dur(s.timeout_secs * 1000)] : null,
        ["exit code", j.exit_code ?? "–"],
        ["rows", fmtNum(j.progress.rows)],
        ["result", j.result !== null && j.result !== undefined ? h("code", { text: JSON.stringify(j.result) }) : "–"],
      ]),
      s.params && Object.keys(s.params).length ? h("div", {}, h("h3", { text: "params" }), h("pre", { class: "json", text: JSON.stringify(s.params, null, 2) })) : null,
      j.attempts && j.attempts.length ? h("div", {}, h("h3", { text: "attempts" }), h("div", { class: "scroll-x" }, attempts)) : null,
      h("details", {}, h("summary", { text: "raw spec" }), h("pre", { class: "json", text: JSON.stringify(s, null, 2) })),
    );
    const files = j.files || [];
    put(filesSec.body, 
      files.length
        ? h(
            "ul",
            { class: "files" },
            ...files.map((f) =>
              h(
                "li",
                {},
                h("button", {
                  type: "button",
                  class: "btn small",
                  text: "Download",
                  onclick: () => download(`/api/v1/jobs/${id}/files/${encodeURIComponent(f.name)}`, `job-${id}-${f.name}`).catch((e) => toast(e.message, "error")),
                }),
                h("span", { class: "fname", text: f.name }),
                h("span", { class: "muted small", text: `${fmtNum(f.size)} B`, title: `sha256 ${f.sha256}` }),
              ),
            ),
          )
        : h("p", { class: "muted", text: TERMINAL.has(j.state) ? "This job uploaded no files." : "Files appear when the job has uploaded them." }),
    );
    put(counts, h("span", { class: "lc warn", text: `${j.warnings} warnings` }), h("span", { class: "lc err", text: `${j.errors} errors` }));
  }

  function renderAll() {
    renderHead();
    renderDetails();
  }

  function logLine(l) {
    return h("div", { class: `ll lv-${l.level} sx-${l.stream}`, dataset: { seq: String(l.seq) } }, h("span", { class: "lt", text: clock(l.at) }), h("span", { class: "lx", text: l.text }));
  }

  function renderLogs() {
    const lines = st.level === "all" ? st.logs : st.logs.filter((l) => l.level === st.level);
    put(logBox, ...lines.slice(-3000).map(logLine));
    if (!lines.length) logBox.append(h("div", { class: "muted", text: st.level === "all" ? "No log lines yet." : `No ${st.level}s.` }));
    if (st.follow) logBox.scrollTop = logBox.scrollHeight;
    earlier.hidden = !(st.logs.length && st.logs[0].seq > (st.job ? st.job.log_dropped : 0));
  }

  function setLevel(l) {
    st.level = l;
    for (const b of levelBtns) b.setAttribute("aria-pressed", String(b.dataset.level === l));
    renderLogs();
  }

  earlier.addEventListener("click", async () => {
    const first = st.logs[0].seq;
    const from = Math.max(0, first - 1000);
    const r = await api(`/api/v1/jobs/${id}/logs?after=${from}&limit=${first - from}`);
    st.logs = [...r.lines.filter((l) => l.seq < first), ...st.logs];
    const keep = st.follow;
    st.follow = false;
    renderLogs();
    st.follow = keep;
  });

  async function load() {
    try {
      const j = await api(`/api/v1/jobs/${id}`);
      if (newer(st.job, j)) st.job = j;
    } catch (e) {
      put(head, h("h1", { text: `Job ${id}` }), h("p", { class: "error", text: e.message }));
      return;
    }
    renderAll();
    const [logs] = await Promise.all([api(`/api/v1/jobs/${id}/logs?tail=1000`), loadRows()]);
    // Merge with lines that arrived live meanwhile.
    const seen = new Set(logs.lines.map((l) => l.seq));
    st.logs = [...logs.lines, ...st.logs.filter((l) => !seen.has(l.seq))].sort((a, b) => a.seq - b.seq);
    renderLogs();
  }

  const rowsSoon = debounce(() => series(st.rows), 200);
  const logsSoon = debounce(renderLogs, 200);
  const headSoon = debounce(renderAll, 300);
  const refetchSoon = debounce(loadRows, 1000);
  const ticker = setInterval(() => st.job && st.job.state === "running" && renderHead(), 5000);

  return {
    el,
    needs: { rows: true, logs: true, job: id },
    init: load,
    refresh: load,
    destroy() {
      clearInterval(ticker);
      chart.destroy();
      sigma.destroy();
    },
    onLive(type, m) {
      if (type === "job" && m.id === id) {
        if (!newer(st.job, m)) return;
        const newAttempt = st.job && m.attempt !== st.job.attempt;
        st.job = m;
        headSoon();
        if (newAttempt) refetchSoon();
      } else if (type === "rows" && m.job === id) {
        if (st.attempt !== null && m.attempt !== st.attempt) return refetchSoon();
        if (st.range) return; // zoomed: the view stays put
        const last = st.rows.length ? st.rows[st.rows.length - 1].seq : -1;
        for (const r of m.rows) if (r.seq > last) st.rows.push(r);
        st.sinceFetch += m.rows.length;
        // Many raw rows on top of a downsampled curve: fetch a fresh downsampled one.
        if (st.sinceFetch > POINTS) refetchSoon();
        else rowsSoon();
      } else if (type === "logs" && m.job === id) {
        const last = st.logs.length ? st.logs[st.logs.length - 1].seq : -1;
        for (const l of m.lines) if (l.seq > last) st.logs.push(l);
        if (st.logs.length > 20000) st.logs.splice(0, st.logs.length - 20000);
        logsSoon();
      }
    },
  };
}

// ---- charts -------------------------------------------------------------------------------------

function chartsView(q) {
  const ids = (q.get("jobs") || "").split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const st = { ids, metric: q.get("metric") || "best_ever", axis: q.get("x") || "generation", rows: new Map(), jobs: new Map(), range: null, summary: null, env: q.get("env") || "", study: q.get("study") || "" };
  const idsIn = h("input", { id: "chart-jobs", value: ids.join(","), placeholder: "job ids, e.g. 3,4,5", size: 18 });
  const metricSel = h("select", { id: "chart-metric" }, ...["best_ever", "best", "mean"].map((m) => h("option", { value: m, text: m, selected: m === st.metric })));
  const axisSel = h("select", { id: "chart-axis" }, ...["generation", "evals", "seq"].map((m) => h("option", { value: m, text: m, selected: m === st.axis })));
  const apply = () => {
    const p = new URLSearchParams({ jobs: idsIn.value.replace(/\s+/g, ""), metric: metricSel.value, x: axisSel.value });
    if (st.env) p.set("env", st.env);
    if (st.study) p.set("study", st.study);
    location.hash = `#/charts?${p}`;
  };
  // A study: its jobs' curves (the first 15) and its own comparison.
  const studySel = h("select", { id: "chart-study", title: "Compare within one study" }, h("option", { value: "", text: "all jobs" }));
  studySel.addEventListener("change", async () => {
    st.study = studySel.value;
    if (st.study) {
      try {
        const sd = await api(`/api/v1/studies/${encodeURIComponent(st.study)}`);
        const jobs = (sd.jobs || []).filter((j) => j.state !== "queued");
        idsIn.value = jobs.slice(0, 15).map((j) => j.id).join(",");
      } catch (e) {
        toast(`Study: ${e.message}`, "error");
      }
    }
    apply();
  });
  api("/api/v1/studies")
    .then((r) => {
      for (const x of r.studies || []) studySel.append(h("option", { value: x.name, text: x.name, selected: x.name === st.study }));
      if (!(r.studies || []).length) studySel.hidden = true;
    })
    .catch(() => (studySel.hidden = true));
  const runningBtn = h("button", {
    type: "button",
    class: "btn small ghost",
    text: "Running jobs",
    onclick: async () => {
      const r = await api("/api/v1/jobs?state=running&limit=15");
      idsIn.value = r.jobs.map((j) => j.id).join(",");
      apply();
    },
  });
  const latestBtn = h("button", {
    type: "button",
    class: "btn small ghost",
    text: "Latest finished",
    onclick: async () => {
      const r = await api("/api/v1/jobs?state=succeeded&limit=8");
      idsIn.value = r.jobs.map((j) => j.id).join(",");
      apply();
    },
  });
  const show = h("button", { type: "button", class: "btn small primary", text: "Show", onclick: apply });
  idsIn.addEventListener("keydown", (e) => e.key === "Enter" && apply());
  metricSel.addEventListener("change", apply);
  axisSel.addEventListener("change", apply);
  const curves = section("Learning curves", studySel, idsIn, show, runningBtn, latestBtn, metricSel, axisSel);
  const lc = new LineChart(curves.body, { title: `${st.metric} per ${st.axis}`, xLabel: st.axis, height: 340, file: "learning-curves", alwaysLegend: true, onZoom: (r) => zoom(r) });
  const sig = section("Sigma convergence");
  const sc = new LineChart(sig.body, { title: `σ per ${st.axis} (log scale)`, xLabel: st.axis, logY: true, height: 240, file: "sigma-convergence", alwaysLegend: true, onZoom: (r) => zoom(r) });
  const envSel = h("select", { id: "chart-env", title: "environment" });
  envSel.addEventListener("change", () => {
    st.env = envSel.value;
    renderComparison();
  });
  const cmp = section("Method comparison", h("span", { class: "muted small", text: "final best-ever of finished runs, per method" }), envSel);
  const box = new BoxChart(cmp.body, { title: "Final best-ever by method", height: 300, file: "method-comparison" });
  const dist = section("Score distribution");
  const hist = new HistChart(dist.body, { title: "Final scores", height: 240, file: "score-distribution", bins: 24 });
  if (!ids.length) curves.body.prepend(h("p", { class: "muted", text: "Pick jobs to overlay: type their ids, take the running ones, or select them in the jobs list." }));
  const el = h("div", { class: "charts" }, curves.el, h("div", { class: "cols even" }, sig.el, dist.el), cmp.el);

  const label = (id) => {
    const j = st.jobs.get(id);
    return j ? `#${id} ${j.spec.name || [j.spec.method, j.spec.env, j.spec.seed !== undefined && j.spec.seed !== null ? "s" + j.spec.seed : null].filter(Boolean).join(" ")}` : `#${id}`;
  };
  const color = (id) => PALETTE[st.ids.indexOf(id) % PALETTE.length];

  function draw() {
    lc.setSeries(st.ids.filter((id) => st.rows.has(id)).map((id) => ({ id, label: label(id), color: color(id), points: pointsOf(st.rows.get(id), st.axis, st.metric) })));
    sc.setSeries(st.ids.filter((id) => st.rows.has(id)).map((id) => ({ id, label: label(id), color: color(id), points: pointsOf(st.rows.get(id), st.axis, "sigma") })));
  }
  const drawSoon = debounce(draw, 250);

  async function loadCurves() {
    await Promise.all(
      st.ids.map(async (id) => {
        try {
          const [j, r] = await Promise.all([st.jobs.get(id) || api(`/api/v1/jobs/${id}`), fetchRows(id, st.axis, st.range)]);
          st.jobs.set(id, j);
          st.rows.set(id, r.rows);
        } catch (e) {
          toast(`Job ${id}: ${e.message}`, "error");
        }
      }),
    );
    draw();
  }

  function zoom(range) {
    st.range = range;
    for (const c of [lc, sc]) {
      c.view = range;
      c.resetBtn.hidden = !range;
    }
    loadCurves();
  }

  function renderComparison() {
    const s = st.summary;
    if (!s) return;
    const envs = [...new Set(s.groups.map((g) => g.env))];
    if (!st.env || !envs.includes(st.env)) st.env = envs.find((e) => s.groups.some((g) => g.env === e && g.finished)) || envs[0] || "";
    put(envSel, ...envs.map((e) => h("option", { value: e, text: e, selected: e === st.env })));
    const groups = s.groups.filter((g) => g.env === st.env && g.finished > 0);
    const scope = st.study ? ` · study ${st.study}` : "";
    box.setTitle(`Final best-ever by method · ${st.env || "no environment"}${scope}`);
    box.setGroups(groups.map((g, i) => ({ label: g.method, color: PALETTE[i % PALETTE.length], q1: g.q1, q3: g.q3, median: g.median, min: g.min, max: g.max, mean: g.mean, values: g.finals, note: `sd ${fmtNum(g.std)}` })));
    hist.setTitle(`Final scores · ${st.env || "no environment"}${scope}`);
    hist.setSeries(groups.map((g, i) => ({ label: g.method, color: PALETTE[i % PALETTE.length], values: g.finals })));
  }

  return {
    el,
    needs: { rows: ids.length > 0 },
    async init() {
      loadCurves();
      try {
        st.summary = await api(`/api/v1/summary${st.study ? `?study=${encodeURIComponent(st.study)}` : ""}`);
        renderComparison();
      } catch (e) {
        toast(`Summary: ${e.message}`, "error");
      }
    },
    refresh() {
      loadCurves();
    },
    destroy() {
      for (const c of [lc, sc, box, hist]) c.destroy();
    },
    onLive(type, m) {
      if (type === "rows" && st.rows.has(m.job) && !st.range) {
        const rows = st.rows.get(m.job);
        const last = rows.length ? rows[rows.length - 1].seq : -1;
        for (const r of m.rows) if (r.seq > last) rows.push(r);
        drawSoon();
      } else if (type === "job" && st.jobs.has(m.id)) {
        st.jobs.set(m.id, m);
      }
    },
  };
}

// ---- live debug ---------------------------------------------------------------------------------

function liveView() {
  const st = { paused: false, held: 0, types: new Set(["event", "rows", "logs", "job", "worker"]), job: "", worker: "", count: 0 };
  const pause = h("button", { type: "button", class: "btn small", id: "pause", text: "Pause" });
  const clear = h("button", { type: "button", class: "btn small ghost", text: "Clear" });
  const jobIn = h("input", { placeholder: "job id", size: 7, id: "live-job", title: "Only messages about this job" });
  const workerIn = h("input", { placeholder: "worker", size: 10, id: "live-worker", title: "Only messages from this worker (name or id)" });
  const typeBoxes = ["event", "rows", "logs", "job", "worker"].map((t) => {
    const cb = h("input", { type: "checkbox", checked: true, onchange: () => (cb.checked ? st.types.add(t) : st.types.delete(t)) });
    return h("label", { class: "small" }, cb, ` ${t}`);
  });
  const rate = h("span", { class: "muted small", id: "live-rate" });
  const feed = section("Live stream", pause, clear, jobIn, workerIn, ...typeBoxes, rate);
  const list = h("div", { class: "feed", id: "feed", attrs: { role: "log" } });
  feed.body.append(list);

  const pathIn = h("input", { id: "api-path", value: "/api/v1/status", size: 40, spellcheck: false });
  const out = h("pre", { class: "json", id: "api-out" });
  const meta = h("p", { class: "muted small", id: "api-meta" });
  const get = async () => {
    let p = pathIn.value.trim();
    if (!p.startsWith("/")) p = "/" + p;
    if (!p.startsWith("/api/v1/")) {
      meta.textContent = "Only paths under /api/v1/ can be fetched here.";
      return;
    }
    const t0 = performance.now();
    try {
      const r = await fetch(p, { headers: { Authorization: `Bearer ${S.token}` } });
      const text = await r.text();
      const ms = performance.now() - t0;
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* not JSON: show as is */
      }
      meta.textContent = `${r.status} ${r.statusText} · ${(text.length / 1024).toFixed(1)} KiB · ${ms.toFixed(0)} ms`;
      out.textContent = shown.length > 500_000 ? shown.slice(0, 500_000) + "\n… (cut)" : shown;
    } catch (e) {
      meta.textContent = `failed: ${e.message}`;
    }
  };
  const quick = ["/api/v1/status", "/api/v1/whoami", "/api/v1/workers", "/api/v1/summary", "/api/v1/jobs?limit=5", "/api/v1/events?limit=20"].map((p) =>
    h("button", {
      type: "button",
      class: "btn small ghost",
      text: p.replace("/api/v1/", ""),
      onclick: () => {
        pathIn.value = p;
        get();
      },
    }),
  );
  const form = h("form", { class: "apiform" }, h("span", { class: "muted", text: "GET" }), pathIn, h("button", { type: "submit", class: "btn small primary", text: "Send" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    get();
  });
  const apiSec = section("Raw API");
  apiSec.body.append(form, h("div", { class: "quick" }, ...quick), meta, out);

  function matches(it) {
    if (!st.types.has(it.type)) return false;
    const m = it.msg;
    const job = it.type === "job" ? m.id : m.job;
    if (st.job && String(job) !== st.job.trim()) return false;
    if (st.worker) {
      const w = st.worker.trim();
      const names = it.type === "worker" ? [m.id, m.name] : it.type === "job" ? [m.worker, m.worker_name] : it.type === "event" ? [m.worker] : [];
      if (!names.some((n) => n && String(n).includes(w))) return false;
    }
    return true;
  }

  function lineOf(it) {
    const m = it.msg;
    let text;
    switch (it.type) {
      case "rows":
        text = `job ${m.job} attempt ${m.attempt}: ${m.rows.length} row${m.rows.length === 1 ? "" : "s"} · ` + m.rows.slice(-1).map((r) => `gen ${r.generation ?? r.seq} best ${fmtNum(r.best)} ever ${fmtNum(r.best_ever)} mean ${fmtNum(r.mean)} σ ${fmtNum(r.sigma)}${r.evals !== undefined ? ` evals ${fmtNum(r.evals)}` : ""}`).join("");
        break;
      case "logs":
        text = `job ${m.job}: ` + m.lines.map((l) => l.text).join(" ⏎ ");
        break;
      case "job":
        text = `job ${m.id} ${m.state}${m.worker_name ? " on " + m.worker_name : ""} · rows ${m.progress.rows} · best-ever ${fmtNum(m.progress.best_ever)}`;
        break;
      case "worker":
        text = `${m.name} ${m.state} · cpu ${Math.round(m.usage.cpu_percent)}% · ram ${Math.round(m.usage.memory_percent)}% · running ${(m.running || []).join(",") || "–"}`;
        break;
      default:
        text = `#${m.id} ${m.kind}: ${m.message}`;
    }
    return h("div", { class: `fl ft-${it.type}` }, h("span", { class: "lt", text: clock(it.at) }), h("span", { class: "ftype", text: it.type }), h("span", { class: "lx", text }));
  }

  function add(it) {
    st.count++;
    if (st.paused) {
      st.held++;
      pause.textContent = `Resume (${st.held} new)`;
      return;
    }
    if (!matches(it)) return;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 30;
    list.append(lineOf(it));
    while (list.children.length > 1000) list.firstChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function rerender() {
    put(list, ...liveLog.items.filter(matches).slice(-1000).map(lineOf));
    list.scrollTop = list.scrollHeight;
  }

  pause.addEventListener("click", () => {
    st.paused = !st.paused;
    pause.textContent = st.paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(st.paused));
    if (!st.paused) {
      st.held = 0;
      rerender();
    }
  });
  clear.addEventListener("click", () => {
    liveLog.items.length = 0;
    put(list, );
  });
  jobIn.addEventListener("input", () => {
    st.job = jobIn.value;
    rerender();
  });
  workerIn.addEventListener("input", () => {
    st.worker = workerIn.value;
    rerender();
  });
  for (const l of typeBoxes) l.firstChild.addEventListener("change", rerender);

  let lastCount = 0;
  const ticker = setInterval(() => {
    rate.textContent = `${Math.round((st.count - lastCount) / 2)} msg/s · ${live.connected ? "connected" : "disconnected"}`;
    lastCount = st.count;
  }, 2000);
  liveLog.listeners.add(add);

  return {
    el: h("div", { class: "cols even" }, feed.el, apiSec.el),
    needs: { rows: true, logs: true },
    init() {
      rerender();
      get();
    },
    destroy() {
      liveLog.listeners.delete(add);
      clearInterval(ticker);
    },
  };
}

// ---- submit -------------------------------------------------------------------------------------

/** "1-3,7" → [1, 2, 3, 7]; "" → [null]. */
function parseSeeds(s) {
  s = s.trim();
  if (!s) return [null];
  const out = [];
  for (const part of s.split(/[,\s]+/).filter(Boolean)) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) throw new Error(`seed "${part}" is not a number or a range like 1-5`);
    const a = Number(m[1]), b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a || b - a > 10000) throw new Error(`seed range "${part}" is backwards or too long`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** Params: a JSON object, or lines of key=value (numbers and true/false are typed). */
function parseParams(s) {
  s = s.trim();
  if (!s) return {};
  if (s.startsWith("{")) {
    const v = JSON.parse(s);
    if (typeof v !== "object" || Array.isArray(v) || v === null) throw new Error("params must be a JSON object");
    return v;
  }
  const out = {};
  for (const line of s.split(/\n/).map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf("=");
    if (i < 1) throw new Error(`params line "${line}" is not key=value`);
    const k = line.slice(0, i).trim(), v = line.slice(i + 1).trim();
    out[k] = v === "true" ? true : v === "false" ? false : v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v;
  }
  return out;
}

function submitView() {
  const f = (label, input, hint) => h("div", { class: "field" }, h("label", { for: input.id, text: label }), input, hint ? h("span", { class: "hint", text: hint }) : null);
  const kind = h("select", { id: "s-kind", name: "kind" }, ...["experiment", "command", "reverse", "hash", "sum", "upper", "wait"].map((k) => h("option", { value: k, text: k })));
  const method = h("input", { id: "s-method", name: "method", value: "cma_es", attrs: { list: "methods" }, required: true });
  const env = h("input", { id: "s-env", name: "env", value: "CartPole-v1", attrs: { list: "envs" } });
  const maxEvals = h("input", { id: "s-max-evals", name: "max_evals", type: "number", min: 1, value: 100000 });
  const seeds = h("input", { id: "s-seeds", name: "seeds", placeholder: "e.g. 1-5 or 1,2,3", value: "" });
  const params = h("textarea", { id: "s-params", name: "params", rows: 4, placeholder: "popsize=16\nsigma0=0.5\n(or a JSON object)" });
  const name = h("input", { id: "s-name", name: "name", placeholder: "optional label" });
  const study = h("input", { id: "s-study", name: "study", placeholder: "optional study name" });
  const priority = h("input", { id: "s-priority", name: "priority", type: "number", value: 0 });
  const gpus = h("input", { id: "s-gpus", name: "gpus", type: "number", min: 0, value: 0 });
  const memory = h("input", { id: "s-memory", name: "memory_mb", type: "number", min: 0, value: 0 });
  const tags = h("input", { id: "s-tags", name: "tags", placeholder: "comma-separated, e.g. cuda12,lab-a" });
  const attempts = h("input", { id: "s-attempts", name: "max_attempts", type: "number", min: 1, max: 100, value: 3 });
  const timeout = h("input", { id: "s-timeout", name: "timeout_secs", type: "number", min: 1, placeholder: "none" });
  const argv = h("input", { id: "s-argv", name: "argv", placeholder: "python3 train.py --lr 0.1" });
  const input = h("input", { id: "s-input", name: "input", placeholder: "input of a built-in job" });
  const methods = h("datalist", { id: "methods" }, ...["cma_es", "openai_es", "random_search", "island_model"].map((m) => h("option", { value: m })));
  const envs = h("datalist", { id: "envs" }, ...["CartPole-v1", "sphere", "rastrigin", "rosenbrock"].map((m) => h("option", { value: m })));
  const preview = h("p", { class: "muted", id: "s-preview" });
  const result = h("div", { id: "s-result" });
  const expOnly = [f("method", method), f("environment", env), f("max evals", maxEvals), f("seeds", seeds, "one job per seed"), f("params", params, "key=value per line, or JSON")];
  const cmdOnly = [f("argv", argv, "split on spaces; runs only on workers started with --allow-commands")];
  const inOnly = [f("input", input)];
  const submit = adminButton("Submit", { class: "btn primary", id: "s-submit", type: "submit" });
  const form = h(
    "form",
    { class: "submit card", id: "submit-form" },
    h("h2", { text: "Submit jobs" }),
    h("div", { class: "fields" }, f("kind", kind), ...expOnly, ...cmdOnly, ...inOnly, f("name", name), f("study", study), f("priority", priority, "higher runs first"), f("GPUs", gpus), f("memory (MiB)", memory), f("tags", tags, "the worker must carry all"), f("max attempts", attempts), f("timeout (s)", timeout)),
    methods,
    envs,
    preview,
    h("div", { class: "actions" }, submit, isAdmin() ? null : h("span", { class: "muted", text: `This ${S.who ? S.who.scope : ""} token may look but not submit: log in with an admin token to submit jobs.` })),
    result,
  );

  function specs() {
    const k = kind.value;
    const base = { kind: k, priority: Number(priority.value || 0), max_attempts: Number(attempts.value || 3), requirements: { gpus: Number(gpus.value || 0), memory_mb: Number(memory.value || 0), tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) } };
    if (name.value.trim()) base.name = name.value.trim();
    if (study.value.trim()) base.study = study.value.trim();
    if (timeout.value) base.timeout_secs = Number(timeout.value);
    if (k === "experiment") {
      const p = parseParams(params.value);
      return parseSeeds(seeds.value).map((s) => {
        const spec = Object.assign({}, base, { method: method.value.trim(), env: env.value.trim() || undefined, max_evals: Number(maxEvals.value) || undefined });
        if (Object.keys(p).length) spec.params = p;
        if (s !== null) spec.seed = s;
        return spec;
      });
    }
    if (k === "command") return [Object.assign(base, { argv: argv.value.trim().split(/\s+/).filter(Boolean) })];
    return [Object.assign(base, { input: input.value })];
  }

  function update() {
    const k = kind.value;
    for (const x of expOnly) x.hidden = k !== "experiment";
    for (const x of cmdOnly) x.hidden = k !== "command";
    for (const x of inOnly) x.hidden = k === "experiment" || k === "command";
    try {
      const n = specs().length;
      preview.textContent = `Will submit ${n} job${n === 1 ? "" : "s"}.`;
      preview.className = "muted";
    } catch (e) {
      preview.textContent = e.message;
      preview.className = "error";
    }
  }
  form.addEventListener("input", update);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!isAdmin()) return;
    let list;
    try {
      list = specs();
    } catch (x) {
      preview.textContent = x.message;
      preview.className = "error";
      return;
    }
    try {
      const ids = list.length === 1 ? [(await api("/api/v1/jobs", { body: list[0] })).id] : (await api("/api/v1/jobs/batch", { body: { jobs: list } })).ids;
      put(result, h("p", { class: "ok" }, `Submitted ${ids.length} job${ids.length === 1 ? "" : "s"}: `, ...ids.slice(0, 50).flatMap((id) => [h("a", { href: `#/jobs/${id}`, text: `#${id}` }), " "]), ids.length > 1 ? h("a", { href: `#/charts?jobs=${ids.slice(0, 15).join(",")}`, text: "compare curves" }) : null));
      toast(`Submitted ${ids.length} job${ids.length === 1 ? "" : "s"}`);
    } catch (x) {
      put(result, h("p", { class: "error", text: `Refused: ${x.message}` }));
    }
  });
  api("/api/v1/summary")
    .then((s) => {
      const ms = new Set(["cma_es", "openai_es", "random_search", "island_model", ...s.groups.map((g) => g.method)]);
      const es = new Set(["CartPole-v1", "sphere", "rastrigin", "rosenbrock", ...s.groups.map((g) => g.env)]);
      put(methods, ...[...ms].map((m) => h("option", { value: m })));
      put(envs, ...[...es].map((m) => h("option", { value: m })));
    })
    .catch(() => {});
  update();
  return { el: form, needs: {} };
}

// ---- boot ---------------------------------------------------------------------------------------

$("#logout").addEventListener("click", () => logout("Logged out."));
window.addEventListener("hashchange", route);
if (S.token) start();
else showLogin();
