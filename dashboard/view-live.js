// The live debug page: every message of the stream (pausable, filtered by type, job and worker)
// and a raw GET of any API path.
"use strict";

import { h, put, section } from "./dom.js";
import { clock, count, fmtNum, percent, plural, size } from "./format.js";
import { S } from "./session.js";
import { live, liveLog } from "./stream.js";

export function liveView() {
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
      meta.textContent = `${r.status} ${r.statusText} · ${size(new Blob([text]).size)} · ${ms.toFixed(0)} ms`;
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
        text = `job ${m.job} attempt ${m.attempt}: ${plural(m.rows.length, "row")} · ` + m.rows.slice(-1).map((r) => `gen ${count(r.generation ?? r.seq)} best ${fmtNum(r.best)} ever ${fmtNum(r.best_ever)} mean ${fmtNum(r.mean)} σ ${fmtNum(r.sigma)}${r.evals !== undefined ? ` evals ${count(r.evals)}` : ""}`).join("");
        break;
      case "logs":
        text = `job ${m.job}: ` + m.lines.map((l) => l.text).join(" ⏎ ");
        break;
      case "job":
        text = `job ${m.id} ${m.state}${m.worker_name ? " on " + m.worker_name : ""} · rows ${count(m.progress.rows)} · best-ever ${fmtNum(m.progress.best_ever)}`;
        break;
      case "worker":
        text = `${m.name} ${m.state} · cpu ${percent(m.usage.cpu_percent / 100)} · ram ${percent(m.usage.memory_percent / 100)} · running ${(m.running || []).join(",") || "–"}`;
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
    put(list);
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
