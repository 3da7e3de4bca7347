// One study: its progress and ETA, its grid of cells (method × environment: states, progress,
// ETA), the controls that add seeds or retry failed runs (through the study route, as
// `gaia study extend` and `retry` do), and the Compare view of its methods (view-compare.js).
// Everything shown is what the server computed; it is fetched again as the study's jobs change.
"use strict";

import { api } from "./api.js";
import { debounce, h, kv, put, section, toast } from "./dom.js";
import { count, plural } from "./format.js";
import { badge, progressBar, statesText, studyEta, submitButton } from "./parts.js";
import { comparePanel } from "./view-compare.js";

/**
 * Each group's label: the method and its swept params (`cma_es pop_size=32`), as the server's
 * comparison names methods: a param is swept where the method's groups on one environment
 * differ in it; one all of them set alike is a setting of the environment (`eval_episodes=2` on
 * CartPole) and keeps the method one row.
 */
function labels(groups) {
  const key = (g) => JSON.stringify([g.method, g.env]);
  const seen = new Map();
  for (const g of groups) {
    const k = key(g);
    if (!seen.has(k)) seen.set(k, []);
    seen.get(k).push(g.params || {});
  }
  const swept = (g, p) => {
    const all = seen.get(key(g));
    return new Set(all.map((q) => JSON.stringify(q[p]))).size > 1;
  };
  return new Map(groups.map((g) => [g, [g.method, ...Object.entries(g.params || {}).filter(([k]) => swept(g, k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`)].join(" ")]));
}

export function studyView(name) {
  const path = `/api/v1/studies/${encodeURIComponent(name)}`;
  const head = section(`Study ${name}`, h("a", { href: `#/jobs?study=${encodeURIComponent(name)}`, class: "btn small ghost", text: "Jobs" }), h("a", { href: `#/charts?study=${encodeURIComponent(name)}`, class: "btn small ghost", text: "Curves" }));
  const summary = h("div", { id: "study-summary" });
  head.body.append(summary);

  // Add seeds / retry: a dry run says what would be submitted, then the real submission.
  const seedsIn = h("input", { id: "extend-seeds", value: "+5", size: 8, title: "+N: the next N seed numbers; or a list such as 11..15" });
  const moreNote = h("span", { class: "muted small", id: "more-note" });
  async function more(kind, body, button) {
    const url = `${path}/${kind}`;
    try {
      const dry = await api(url, { body: Object.assign({}, body, { dry_run: true }) });
      if (!confirm(`${kind === "extend" ? "Add" : "Retry"} ${plural(dry.planned, "job")} in study ${name}?`)) return;
      button.disabled = true;
      const done = await api(url, { body });
      moreNote.textContent = `${kind === "extend" ? "added" : "retried"} ${plural(done.jobs.length, "job")} (${count(done.total_jobs)} in all)`;
      toast(`Study ${name}: ${moreNote.textContent}`);
      load();
      // The new runs make the comparison provisional: say so now, not when a job next ends.
      compare.load();
    } catch (e) {
      moreNote.textContent = e.message;
      toast(`${kind}: ${e.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }
  const extendBtn = submitButton("Add seeds", { id: "extend-go", class: "btn small", title: "Every method × environment of the study gets these seeds (gaia study extend)" });
  const retryBtn = submitButton("Retry failed", { id: "retry-go", class: "btn small", title: "Run again the runs that failed, were lost or timed out (gaia study retry)" });
  const btn = (b) => (b.tagName === "BUTTON" ? b : b.querySelector("button"));
  btn(extendBtn).addEventListener("click", () => more("extend", { seeds: seedsIn.value.trim() }, btn(extendBtn)));
  btn(retryBtn).addEventListener("click", () => more("retry", {}, btn(retryBtn)));
  const controls = h("div", { class: "study-controls" }, h("label", { for: "extend-seeds", text: "Seeds " }), seedsIn, extendBtn, retryBtn, moreNote);
  head.body.append(controls);

  const cellsSec = section("Cells: method × environment");
  const cells = h("table", { class: "grid", id: "study-cells" });
  cellsSec.body.append(h("div", { class: "scroll-x" }, cells));

  const compare = comparePanel(name);
  const el = h("div", { class: "study" }, head.el, cellsSec.el, compare.el);

  function render(r) {
    const p = r.progress;
    const rec = r.record;
    put(
      summary,
      kv([
        ["jobs", `${count(p.jobs)}${rec ? ` in ${plural(rec.submissions.length, "submission")}` : ""}`],
        ["progress", progressBar(p.fraction, `${count(p.evals_done)} / ${count(p.evals_total)} evals`)],
        ["states", h("span", {}, ...Object.keys(p.states).map((s) => h("span", { class: "state-count" }, badge(s), ` ${count(p.states[s])} `)))],
        ["ETA", studyEta(p)],
      ]),
    );
    // The grid: one row per method (× params), one column per environment.
    const envs = [...new Set(r.groups.map((g) => g.env))];
    const label = labels(r.groups);
    const rows = [...new Set(r.groups.map((g) => label.get(g)))];
    const cell = (m, e) => {
      const g = r.groups.find((x) => label.get(x) === m && x.env === e);
      if (!g) return h("td", { class: "muted", text: "–" });
      const cp = g.progress || {};
      return h(
        "td",
        { class: "cell", dataset: { method: m, env: e } },
        progressBar(cp.fraction, `${count(g.succeeded)} / ${count(g.jobs)} done`),
        h("div", { class: "small muted", text: statesText(cp.states) }),
        h("div", { class: "small muted", text: `ETA ${studyEta(cp)}` }),
      );
    };
    put(
      cells,
      h("thead", {}, h("tr", {}, h("th", { text: "method" }), ...envs.map((e) => h("th", { text: e })))),
      h("tbody", {}, ...rows.map((m) => h("tr", {}, h("td", { class: "strong", text: m }), ...envs.map((e) => cell(m, e))))),
    );
  }

  async function load() {
    try {
      render(await api(path));
    } catch (e) {
      if (e.status === 404) put(summary, h("p", { class: "muted", text: `No study named ${name}.` }));
      else if (e.status !== 401) toast(`Study: ${e.message}`, "error");
    }
  }
  const soon = debounce(load, 1500);

  return {
    el,
    needs: { rows: false, logs: false },
    init() {
      load();
      compare.load();
    },
    refresh() {
      soon();
      compare.soon();
    },
    destroy() {
      soon.cancel();
      compare.destroy();
    },
    onLive(type, m) {
      // A job of this study changed: its numbers change (the server recomputes them).
      if (type === "job" && m.spec && m.spec.study === name) {
        soon();
        compare.soon();
      }
    },
  };
}
