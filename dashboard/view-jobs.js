// The jobs list: filters (state, study, "my jobs", a user), pages from the server, selection
// for comparison, exports.
"use strict";

import { api, download } from "./api.js";
import { saveBlob } from "./chart.js";
import { debounce, h, put, section, toast } from "./dom.js";
import { plural, toCsv } from "./format.js";
import { jobRow } from "./parts.js";
import { S } from "./session.js";

export function jobsView(q) {
  const state = q.get("state") || "";
  const study = q.get("study") || "";
  const before = q.get("before") || "";
  const mine = q.get("mine") === "1";
  const owner = mine ? "" : q.get("owner") || "";
  const stateSel = h("select", { id: "f-state", title: "Filter by state" }, h("option", { value: "", text: "any state" }), ...["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost"].map((s) => h("option", { value: s, text: s, selected: s === state })));
  const studyIn = h("input", { id: "f-study", placeholder: "study", value: study, size: 12 });
  const mineBox = h("input", { type: "checkbox", id: "f-mine", checked: mine });
  const mineLabel = h("label", { class: "check", title: `Only the jobs of ${S.who ? S.who.user : "this token's user"}` }, mineBox, " my jobs");
  const ownerIn = h("input", { id: "f-owner", placeholder: "user", value: owner, size: 10, title: "Only this user's jobs", disabled: mine });
  const go = () => {
    const p = new URLSearchParams();
    if (stateSel.value) p.set("state", stateSel.value);
    if (studyIn.value.trim()) p.set("study", studyIn.value.trim());
    if (mineBox.checked) p.set("mine", "1");
    else if (ownerIn.value.trim()) p.set("owner", ownerIn.value.trim());
    location.hash = `#/jobs${p.toString() ? "?" + p : ""}`;
  };
  stateSel.addEventListener("change", go);
  studyIn.addEventListener("change", go);
  mineBox.addEventListener("change", go);
  ownerIn.addEventListener("change", go);
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
  const sec = section("Jobs", stateSel, studyIn, mineLabel, ownerIn, compare, exportCsv, exportJson, ...studyExports);
  const table = h("table", { class: "grid", id: "jobs" });
  const foot = h("div", { class: "pager" });
  sec.body.append(h("div", { class: "scroll-x" }, table), foot);
  const selected = new Set();
  compare.addEventListener("click", () => (location.hash = `#/charts?jobs=${[...selected].join(",")}`));

  function filterQuery() {
    const p = new URLSearchParams();
    if (state) p.set("state", state);
    if (study) p.set("study", study);
    if (mine) p.set("mine", "1");
    if (owner) p.set("owner", owner);
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
    const who = mine ? S.who.user : owner;
    const name = `gaia-jobs${state ? "-" + state : ""}${study ? "-" + study : ""}${who ? "-" + who : ""}`;
    if (fmt === "json") return saveBlob(new Blob([JSON.stringify(all, null, 2)], { type: "application/json" }), `${name}.json`);
    const header = ["id", "name", "kind", "method", "env", "max_evals", "seed", "study", "owner", "priority", "state", "attempt", "worker", "submitted_at", "started_at", "finished_at", "duration_s", "rows", "generation", "evals", "best", "best_ever", "mean", "sigma", "exit_code", "warnings", "errors", "params", "error"];
    const rows = all.map((j) => {
      const p = j.progress || {};
      const d = j.started_at ? ((j.finished_at || Date.now()) - j.started_at) / 1000 : null;
      return [j.id, j.spec.name, j.spec.kind, j.spec.method, j.spec.env, j.spec.max_evals, j.spec.seed, j.spec.study, j.owner, j.spec.priority, j.state, j.attempt, j.worker_name, j.submitted_at && new Date(j.submitted_at).toISOString(), j.started_at && new Date(j.started_at).toISOString(), j.finished_at && new Date(j.finished_at).toISOString(), d, p.rows, p.generation, p.evals, p.best, p.best_ever, p.mean, p.sigma, j.exit_code, j.warnings, j.errors, j.spec.params && Object.keys(j.spec.params).length ? j.spec.params : "", j.error];
    });
    saveBlob(new Blob([toCsv(header, rows)], { type: "text/csv" }), `${name}.csv`);
  }

  async function load() {
    const p = filterQuery();
    p.set("limit", "100");
    if (before) p.set("before", before);
    const page = await api(`/api/v1/jobs?${p}`);
    const head = h("tr", {}, h("th", {}), ...["id", "job", "state", "owner", "worker", "progress", "best-ever", "time", ""].map((t) => h("th", { text: t })));
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
    if (!page.jobs.length) body.append(h("tr", {}, h("td", { colSpan: 10, class: "muted", text: "No jobs match." })));
    put(table, h("thead", {}, head), body);
    const first = page.jobs.length ? page.jobs[0].id : null;
    const pq = (b) => {
      const x = filterQuery();
      if (b) x.set("before", String(b));
      return `#/jobs${x.toString() ? "?" + x : ""}`;
    };
    put(foot,
      h("span", { class: "muted", text: `${plural(page.total, "job")}${page.jobs.length ? ` · showing #${page.jobs[page.jobs.length - 1].id}–#${first}` : ""}` }),
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
