// The Compare view of a study: its methods' IQM, median, mean and optimality gap with 95 %
// intervals, the probability of improvement, runs per cell and what was left out, optionally
// per environment and against a target, and the comparison's figures — all as the server
// computed them (GET /api/v1/studies/{name}/compare and compare.png): no statistics here.
// While the study runs it is fetched again as jobs end (at most every few seconds; the server
// answers a study of a few hundred runs in milliseconds).
"use strict";

import { api, download } from "./api.js";
import { debounce, h, put, section, toast } from "./dom.js";
import { count, fmtInterval, fmtNum } from "./format.js";
import { S } from "./session.js";

/** The figures, as the server names them, with their titles here. */
const FIGURES = [
  ["aggregate", "Aggregates with 95 % intervals"],
  ["profile", "Performance profiles"],
  ["improvement", "Probability of improvement"],
  ["curves", "Sample efficiency (IQM)"],
  ["ecdf", "Evaluations to reach the target (ECDF)"],
];

// A table that scrolls inside its panel where it is wider (a phone), as every view's tables.
function table(head, rows, id) {
  return h("div", { class: "scroll-x" }, h("table", { class: "grid compact", id }, h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { text: t })))), h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h("td", { class: i ? "num" : "", text: c })))))));
}

export function comparePanel(name) {
  const base = `/api/v1/studies/${encodeURIComponent(name)}`;
  const scoreSel = h("select", { id: "compare-score", title: "How a run's score is taken" }, ...[["final", "final evaluation"], ["best_ever", "best-ever"], ["auc", "area under the curve"]].map(([v, t]) => h("option", { value: v, text: `score: ${t}` })));
  const byEnv = h("input", { type: "checkbox", id: "compare-by-env" });
  const target = h("input", { type: "checkbox", id: "compare-target" });
  const sec = section("Compare", scoreSel, h("label", { class: "check" }, byEnv, " per environment"), h("label", { class: "check" }, target, " evaluations to solve"));
  const banner = h("p", { class: "banner warn", id: "compare-provisional", hidden: true });
  const body = h("div", { id: "compare-body" }, h("p", { class: "muted", text: "Loading…" }));
  const figs = h("div", { class: "figures", id: "compare-figures" });
  sec.body.append(banner, body, figs);
  let urls = [];
  let last = 0;
  let timer = null;

  function query(extra) {
    const p = new URLSearchParams();
    if (scoreSel.value !== "final") p.set("score", scoreSel.value);
    if (byEnv.checked) p.set("by", "env");
    if (target.checked) p.set("target", "solved");
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    const q = p.toString();
    return q ? `?${q}` : "";
  }

  function render(c) {
    banner.hidden = !c.provisional;
    banner.textContent = c.provisional ? c.notes[0] || "provisional: the study is still running" : "";
    const parts = [];
    parts.push(h("p", { class: "muted small", text: `Score: ${c.score.definition}. Normalised per environment (score − low) / (high − low): ${c.normalisation.map((n) => `${n.env} ${fmtNum(n.low)} → ${fmtNum(n.high)} (${n.source === "shipped" ? "random → solved" : n.source})`).join("; ")}. ${Math.round(c.confidence * 100)} % intervals: percentile stratified bootstrap, ${count(c.resamples)} resamples, seed ${c.seed}.` }));
    parts.push(table(["method", "runs", "IQM", "median", "mean", "optimality gap"], c.methods.map((m) => [m.method, count(m.runs), fmtInterval(m.iqm), fmtInterval(m.median), fmtInterval(m.mean), fmtInterval(m.optimality_gap)]), "compare-table"));
    const envs = c.normalisation.map((n) => n.env);
    const runs = c.methods.map((m) => [
      m.method,
      ...envs.map((e) => {
        const x = m.cells.find((cell) => cell.env === e);
        if (!x) return "–";
        return `${x.runs}${x.pending ? ` +${x.pending} to come` : ""}${x.left_out.length ? ` −${x.left_out.length} left out` : ""}`;
      }),
    ]);
    parts.push(h("h3", { text: "Runs per cell" }), table(["method", ...envs], runs, "compare-runs"));
    const left = c.methods.flatMap((m) => m.cells.flatMap((x) => x.left_out.map((l) => `${m.method} on ${x.env}: job ${l.job}${l.seed !== null && l.seed !== undefined ? ` (seed ${l.seed})` : ""} ${l.why}`)));
    if (left.length) parts.push(h("ul", { class: "small muted", id: "compare-left-out" }, ...left.map((t) => h("li", { text: t }))));
    if (c.improvement.length) parts.push(h("h3", { text: "Probability of improvement" }), table(["P(X > Y)", "estimate [95 % CI]"], c.improvement.map((p) => [`P(${p.x} > ${p.y})`, fmtInterval(p)]), "compare-improvement"));
    for (const e of c.by_env || []) parts.push(h("h3", { text: e.env }), table(["method", "runs", "IQM", "median", "mean", "optimality gap"], e.methods.map((m) => [m.method, count(m.runs), fmtInterval(m.iqm), fmtInterval(m.median), fmtInterval(m.mean), fmtInterval(m.optimality_gap)])));
    if (c.target) {
      // The pooled row (over the aggregated environments, c.envs) only where it pools several
      // of the method's: else it repeats one row, or has nothing to pool.
      const pooled = (m) => m.cells.filter((x) => c.envs.includes(x.env)).length > 1;
      const rows = c.target.methods.flatMap((m) => [...m.cells.map((x) => [`${m.method} · ${x.env}`, `${x.successes} / ${x.runs}`, fmtInterval(x.success), fmtInterval(x.ert, "∞")]), ...(pooled(m) ? [[`${m.method} · all`, "", fmtInterval(m.success), ""]] : [])]);
      parts.push(h("h3", { text: `Target: ${c.target.target}` }), table(["method · env", "reached", "success rate", "ERT (evaluations)"], rows, "compare-target-table"));
      parts.push(h("p", { class: "muted small", id: "compare-target-note", text: `${Math.round(c.confidence * 100)} % intervals. Success rate: Wilson score interval. ERT: bootstrap over the cell's runs (∞ where resamples without a success are common).` }));
    }
    for (const n of c.notes.slice(c.provisional ? 1 : 0)) parts.push(h("p", { class: "muted small", text: `Note: ${n}` }));
    put(body, ...parts);
  }

  async function figure(kind, img) {
    const r = await fetch(`${base}/compare.png${query({ figure: kind, width: 1200, height: 750 })}`, { headers: { Authorization: `Bearer ${S.token}` } });
    if (!r.ok) {
      img.replaceWith(h("p", { class: "muted small", dataset: { figure: kind }, text: `${kind}: ${(await r.json().catch(() => ({}))).error || r.status}` }));
      return;
    }
    const url = URL.createObjectURL(await r.blob());
    urls.push(url);
    img.src = url;
  }

  function loadFigures() {
    for (const u of urls) URL.revokeObjectURL(u);
    urls = [];
    const cards = FIGURES.map(([kind, title]) => {
      const img = h("img", { class: "compare-fig", alt: `${title} of study ${name}`, dataset: { figure: kind } });
      figure(kind, img).catch(() => {});
      const dl = h("button", { type: "button", class: "btn small ghost", text: "PNG", title: "Download at 1600×1000", onclick: () => download(`${base}/compare.png${query({ figure: kind })}`, `study-${name}-${kind}.png`).catch((e) => toast(e.message, "error")) });
      return h("figure", { class: "fig" }, h("figcaption", {}, title, " ", dl), img);
    });
    put(figs, ...cards);
  }

  async function load() {
    last = Date.now();
    try {
      render(await api(`${base}/compare${query()}`));
      loadFigures();
    } catch (e) {
      if (e.status !== 401) put(body, h("p", { class: "muted", text: e.message }));
      put(figs);
    }
  }
  // Live: at most one comparison every 5 s while jobs keep ending.
  const soonNow = debounce(load, 1000);
  function soon() {
    clearTimeout(timer);
    const wait = Math.max(0, 5000 - (Date.now() - last));
    timer = setTimeout(soonNow, wait);
  }
  for (const c of [scoreSel, byEnv, target]) c.addEventListener("change", load);

  return {
    el: sec.el,
    load,
    soon,
    destroy() {
      clearTimeout(timer);
      soonNow.cancel();
      for (const u of urls) URL.revokeObjectURL(u);
    },
  };
}
