// The charts page: overlaid learning curves and σ of chosen jobs (or a study's), the method
// comparison and the score distribution.
"use strict";

import { api } from "./api.js";
import { BoxChart, HistChart, LineChart, PALETTE } from "./chart.js";
import { debounce, h, put, section, toast } from "./dom.js";
import { fmtNum } from "./format.js";
import { fetchRows, pointsOf } from "./rows.js";

/** A study's jobs to overlay: the first 15, those that have started first (a queued job has no curve yet). */
async function studyJobs(name) {
  const sd = await api(`/api/v1/studies/${encodeURIComponent(name)}`);
  const jobs = sd.jobs || [];
  return [...jobs.filter((j) => j.state !== "queued"), ...jobs.filter((j) => j.state === "queued")].slice(0, 15).map((j) => j.id);
}

export function chartsView(q) {
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
        idsIn.value = (await studyJobs(st.study)).join(",");
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
  // What the curves show when no job is picked (a study link picks its jobs once they are known).
  const note = h("p", { class: "muted", hidden: ids.length > 0 || !!st.study, text: "Pick jobs to overlay: type their ids, take the running ones, or select them in the jobs list." });
  curves.body.prepend(note);
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

  /**
   * A link to a study (`#/charts?study=demo`, or that page reloaded) names no jobs: overlay the
   * study's, as picking the study in the list does.
   */
  async function loadStudyCurves() {
    try {
      st.ids = await studyJobs(st.study);
    } catch (e) {
      return toast(`Study: ${e.message}`, "error");
    }
    idsIn.value = st.ids.join(",");
    note.textContent = `Study ${st.study} has no jobs yet.`;
    note.hidden = st.ids.length > 0;
    await loadCurves();
  }

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
    needs: { rows: ids.length > 0 || !!st.study },
    async init() {
      if (st.study && !ids.length) loadStudyCurves();
      else loadCurves();
      try {
        st.summary = await api(`/api/v1/summary${st.study ? `?study=${encodeURIComponent(st.study)}` : ""}`);
        renderComparison();
      } catch (e) {
        toast(`Summary: ${e.message}`, "error");
      }
    },
    refresh() {
      if (st.study && !ids.length) loadStudyCurves();
      else loadCurves();
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
