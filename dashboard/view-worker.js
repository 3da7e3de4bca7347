// One worker's page (#/workers/ID): its state and any hold (pause, drain, quarantine, with who
// and why), hardware, pause/resume/drain buttons, and its CPU, RAM and per-GPU utilisation and
// memory over the last hour, day or week (the server's downsampled telemetry).
"use strict";

import { api } from "./api.js";
import { LineChart, PALETTE } from "./chart.js";
import { h, kv, put, section, toast } from "./dom.js";
import { ago, mib, plural, when } from "./format.js";
import { adminButton } from "./parts.js";

const SPANS = [
  ["hour", "Last hour", 60_000, "minutes ago"],
  ["day", "Last day", 3_600_000, "hours ago"],
  ["week", "Last week", 86_400_000, "days ago"],
];

/** What a hold means, in words. */
export function holdText(hold) {
  if (!hold) return "";
  const what = hold.kind === "draining" && hold.exit ? "draining, then exiting" : hold.kind;
  const by = hold.by || "server";
  return `${what} by ${by} ${ago(hold.since)}${hold.reason ? `: ${hold.reason}` : ""}`;
}

export function workerView(id) {
  const st = { worker: null, span: "hour", telemetry: null, timer: null };
  const head = h("div", { class: "card workerhead" });
  const usage = section("Usage over time");
  const spanBtns = SPANS.map(([key, label]) =>
    h("button", { type: "button", class: "btn small ghost", dataset: { span: key }, text: label, attrs: { "aria-pressed": String(key === st.span) }, onclick: () => setSpan(key) }),
  );
  usage.el.querySelector(".section-tools").append(...spanBtns);
  const cpuChart = new LineChart(usage.body, { title: "CPU and RAM, %", xLabel: "minutes ago", height: 200, file: `worker-${id}-cpu` });
  const gpuBox = h("div", { class: "gpucharts" });
  usage.body.append(gpuBox);
  const gpuCharts = [];
  const details = section("Details");
  const el = h("div", { class: "workerpage" }, head, h("div", { class: "cols" }, h("div", { class: "col-main" }, usage.el), h("div", { class: "col-side" }, details.el)));

  function setSpan(key) {
    st.span = key;
    for (const b of spanBtns) b.setAttribute("aria-pressed", String(b.dataset.span === key));
    loadTelemetry();
  }

  async function act(path, body, done) {
    try {
      const w = await api(`/api/v1/workers/${encodeURIComponent(id)}/${path}`, { method: "POST", body: body || {} });
      st.worker = w;
      render();
      toast(done(w));
    } catch (e) {
      toast(e.message, "error");
    }
  }

  function render() {
    const w = st.worker;
    if (!w) return;
    const hw = w.hardware || {};
    const gpus = hw.gpus || [];
    const buttons = [];
    if (w.hold) {
      buttons.push(adminButton("Resume", { id: "worker-resume", onclick: () => act("resume", undefined, (x) => `${x.name} resumed: it claims jobs again`) }));
    } else {
      buttons.push(adminButton("Pause", { id: "worker-pause", onclick: () => act("pause", { reason: "paused from the dashboard" }, (x) => `${x.name} paused: running jobs finish, no new ones start`) }));
      buttons.push(
        adminButton("Drain", {
          id: "worker-drain",
          class: "btn ghost",
          onclick: () => {
            if (confirm(`Drain ${w.name}? It finishes its ${plural(w.running.length, "running job")} and claims no new ones.`)) act("drain", { reason: "drained from the dashboard" }, (x) => `${x.name} is draining`);
          },
        }),
      );
    }
    put(
      head,
      h("div", { class: "whead" }, h("h2", { text: w.name }), h("span", { class: `wstate ws-${w.state}`, id: "worker-state", text: w.state }), h("span", { class: "muted", text: ` ${w.id} · seen ${ago(w.last_seen)}` })),
      w.hold ? h("p", { class: `hold hold-${w.hold.kind}`, id: "worker-hold", text: holdText(w.hold) }) : null,
      h("div", { class: "actions" }, ...buttons),
    );
    put(
      details.body,
      kv([
        ["host", hw.hostname || "–"],
        ["OS", [hw.os, hw.arch].filter(Boolean).join(" / ") || "–"],
        ["CPU", `${hw.cpu_model || "?"} · ${plural(hw.cpu_cores || 0, "core")}`],
        ["memory", hw.memory_mb ? mib(hw.memory_mb) : "–"],
        ["GPUs", gpus.length ? gpus.map((g) => `GPU${g.index}: ${g.name}${g.memory_mb ? ` (${mib(g.memory_mb)})` : ""}`).join("\n") : "none"],
        ["version", w.version || "–"],
        ["slots", String(w.slots || 1)],
        ["kinds", (w.kinds || []).join(", ")],
        ["tags", (w.tags || []).join(", ") || "–"],
        ["registered", when(w.registered_at)],
        ["running", (w.running || []).length ? null : "nothing"],
      ]),
      (w.running || []).length ? h("div", {}, ...w.running.map((j) => h("a", { href: `#/jobs/${j}`, class: "jobref", text: `#${j}` }))) : null,
    );
  }

  function draw() {
    const t = st.telemetry;
    if (!t) return;
    const [, , unit, label] = SPANS.find((s) => s[0] === st.span);
    const now = Date.now();
    const x = (p) => -(now - p.at) / unit;
    cpuChart.opts.xLabel = label;
    cpuChart.setSeries([
      { id: "cpu", label: "CPU %", color: PALETTE[0], points: t.points.map((p) => [x(p), p.cpu_percent]) },
      { id: "ram", label: "RAM %", color: PALETTE[2], points: t.points.map((p) => [x(p), p.memory_percent]) },
    ]);
    const n = Math.max(0, ...t.points.map((p) => (p.gpus || []).length), ((st.worker && st.worker.hardware && st.worker.hardware.gpus) || []).length);
    while (gpuCharts.length < n) {
      const i = gpuCharts.length;
      const name = st.worker?.hardware?.gpus?.[i]?.name || "";
      gpuCharts.push({
        util: new LineChart(gpuBox, { title: `GPU${i} ${name}: utilisation %`, xLabel: label, height: 160, file: `worker-${id}-gpu${i}-util` }),
        mem: new LineChart(gpuBox, { title: `GPU${i}: memory used, MiB`, xLabel: label, height: 160, file: `worker-${id}-gpu${i}-mem` }),
      });
    }
    gpuCharts.forEach((c, i) => {
      const pts = (key) => t.points.filter((p) => p.gpus && p.gpus[i] && p.gpus[i][key] !== null && p.gpus[i][key] !== undefined).map((p) => [x(p), p.gpus[i][key]]);
      c.util.opts.xLabel = c.mem.opts.xLabel = label;
      c.util.setSeries([{ id: "util", label: "utilisation %", color: PALETTE[1], points: pts("utilization") }]);
      c.mem.setSeries([
        { id: "used", label: "used", color: PALETTE[3], points: pts("memory_used_mb") },
        { id: "total", label: "total", color: PALETTE[5] || PALETTE[4], dash: true, points: pts("memory_total_mb") },
      ]);
    });
  }

  async function loadTelemetry() {
    try {
      st.telemetry = await api(`/api/v1/workers/${encodeURIComponent(id)}/telemetry?span=${st.span}`);
      draw();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function load() {
    try {
      st.worker = await api(`/api/v1/workers/${encodeURIComponent(id)}`);
      render();
      await loadTelemetry();
    } catch (e) {
      put(head, h("h2", { text: "Worker not found" }), h("p", { class: "muted", text: e.message }), h("a", { href: "#/", text: "Back to the overview" }));
    }
  }

  return {
    el,
    needs: {},
    init() {
      load();
      // The telemetry's finest step is 5 s.
      st.timer = setInterval(loadTelemetry, 5000);
    },
    refresh: load,
    onLive(type, msg) {
      if (type === "worker" && st.worker && msg.id === st.worker.id) {
        st.worker = msg;
        render();
      }
    },
    destroy() {
      clearInterval(st.timer);
    },
  };
}
