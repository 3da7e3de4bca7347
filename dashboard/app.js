// GAIA dashboard (minimal first version: login, status, jobs). Every outside string is set as
// text, never as HTML.
"use strict";
const $ = (sel) => document.querySelector(sel);
function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); return e; }
function token() { return localStorage.getItem("gaia-token"); }
async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
  if (r.status === 401) { localStorage.removeItem("gaia-token"); login(); throw new Error("unauthorized"); }
  return r.json();
}
function login() {
  const app = $("#app"); app.replaceChildren();
  const f = el("form"); const i = el("input"); i.type = "password"; i.placeholder = "token"; i.id = "token";
  const b = el("button", "Log in"); f.append(i, b);
  f.addEventListener("submit", (e) => { e.preventDefault(); localStorage.setItem("gaia-token", i.value.trim()); overview(); });
  app.append(el("p", "Paste a GAIA token (gaia serve printed one)."), f);
  $("#logout").hidden = true;
}
async function overview() {
  const status = await api("/api/v1/status");
  const jobs = await api("/api/v1/jobs?limit=50");
  const app = $("#app"); app.replaceChildren();
  $("#logout").hidden = false;
  const s = el("p", `GAIA ${status.version} · workers online ${status.workers_online} · ` + Object.entries(status.jobs).map(([k, v]) => `${k} ${v}`).join(" · "));
  const t = el("table"); const h = el("tr"); for (const c of ["id", "state", "job", "worker", "best"]) h.append(el("th", c)); t.append(h);
  for (const j of jobs.jobs) { const r = el("tr"); r.append(el("td", j.id), el("td", j.state), el("td", j.spec.name || j.spec.method || j.spec.kind), el("td", j.worker_name || ""), el("td", j.progress.best_ever ?? "")); t.append(r); }
  app.append(s, t);
}
$("#logout").addEventListener("click", () => { localStorage.removeItem("gaia-token"); login(); });
if (token()) overview().catch(() => {}); else login();
