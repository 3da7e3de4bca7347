// One job's page: its head (state, progress, exports, cancel), learning curve and σ, logs,
// details, attempts and result files, all kept live by the stream.
"use strict";

import { api, download } from "./api.js";
import { LineChart, PALETTE, saveBlob } from "./chart.js";
import { debounce, h, kv, put, section, toast } from "./dom.js";
import { clock, count, dur, fmtNum, mib, plural, size, toCsv, when } from "./format.js";
import { TERMINAL, badge, eta, etaText, jobTitle, newer, ownerButton, progressBar } from "./parts.js";
import { POINTS, fetchRows, pointsOf } from "./rows.js";

export function jobView(id) {
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
        h("span", { class: "muted", id: "job-owner", text: `by ${j.owner || "admin"}` }),
      ),
      h(
        "div",
        { class: "jobbar" },
        j.state === "running" ? progressBar(p.fraction, p.evals !== undefined && p.evals !== null ? `${count(p.evals)} / ${count(j.spec.max_evals)} evals` : undefined) : null,
        h("span", { class: "stat" }, h("b", { text: fmtNum(p.best_ever ?? p.best) }), " best-ever"),
        h("span", { class: "stat" }, h("b", { text: count(p.generation) }), " generations"),
        h("span", { class: "stat" }, h("b", { text: dur(j.started_at ? (j.finished_at || Date.now()) - j.started_at : null) }), " run time"),
        e !== null ? h("span", { class: "stat", title: e.bound ? "at most: the whole budget at this speed; the experiment may stop early" : "at this speed" }, h("b", { text: etaText(e) }), " left") : null,
        h("span", { class: "grow" }),
        h("span", { class: "muted small", text: "Export" }),
        exp("csv"),
        exp("json"),
        exp("png"),
        !TERMINAL.has(j.state) ? ownerButton(j.cancel_requested ? "Cancelling…" : "Cancel job", { class: "btn danger", id: "cancel-job", disabled: j.cancel_requested, onclick: cancelJob }, j.owner) : null,
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
        s.max_evals ? ["max evals", count(s.max_evals)] : null,
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
        ["rows", count(j.progress.rows)],
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
                h("span", { class: "muted small", text: size(f.size), title: `sha256 ${f.sha256}` }),
              ),
            ),
          )
        : h("p", { class: "muted", text: TERMINAL.has(j.state) ? "This job uploaded no files." : "Files appear when the job has uploaded them." }),
    );
    put(counts, h("span", { class: "lc warn", text: plural(j.warnings, "warning") }), h("span", { class: "lc err", text: plural(j.errors, "error") }));
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
