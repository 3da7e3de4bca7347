// The workers: one card each (hardware, usage bars, running jobs), compact when there are many,
// offline ones folded away. A panel of the overview.
"use strict";

import { api } from "./api.js";
import { $, debounce, h, put, section } from "./dom.js";
import { ago, count, mib, percent, plural } from "./format.js";
import { holdText } from "./view-worker.js";

function usageBar(label, pct) {
  const p = Math.max(0, Math.min(100, pct || 0));
  const fill = h("span", { class: "fill" });
  fill.style.width = `${p}%`;
  if (p > 85) fill.classList.add("hot");
  return h("div", { class: "ubar" }, h("span", { class: "ulabel", text: label }), h("span", { class: "utrack" }, fill), h("span", { class: "uval", text: percent(p / 100) }));
}

/** A worker's card; `mini` (many workers) keeps one line of facts and one row of bars. */
function workerCard(w, mini = false) {
  const hw = w.hardware || {};
  const gpus = hw.gpus || [];
  const usage = w.usage || {};
  const gpuPct = usage.gpu_percent || [];
  const hwText = [hw.cpu_cores ? plural(hw.cpu_cores, "core") : null, hw.memory_mb ? mib(hw.memory_mb) : null, gpus.length ? `${gpus.length}× ${gpus[0].name}` : "no GPU", hw.os && hw.arch ? `${hw.os}/${hw.arch}` : null].filter(Boolean).join(" · ");
  const hwTitle = [hw.hostname, hw.cpu_model, hwText, ...gpus.map((g) => `GPU${g.index}: ${g.name} ${g.memory_mb ? mib(g.memory_mb) : ""}`)].filter(Boolean).join("\n");
  const bars = mini
    ? h("div", { class: "ubars mini" }, usageBar("CPU", usage.cpu_percent), usageBar("RAM", usage.memory_percent), gpus.length ? usageBar(gpus.length > 1 ? `GPU×${gpus.length}` : "GPU", gpuPct.length ? gpuPct.reduce((a, b) => a + b, 0) / gpuPct.length : 0) : null)
    : h("div", { class: "ubars" }, usageBar("CPU", usage.cpu_percent), usageBar("RAM", usage.memory_percent), ...gpus.map((g, i) => usageBar(`GPU${g.index ?? i}`, gpuPct[i])));
  const running = h("span", { class: "wjobs" }, (w.running || []).length ? (mini ? "" : "running ") : "no jobs", ...(w.running || []).map((id) => h("a", { href: `#/jobs/${id}`, class: "jobref", text: `#${id}` })));
  const seen = h("span", { class: "seen", dataset: { seen: String(w.last_seen) }, text: `seen ${ago(w.last_seen)}` });
  return h(
    "div",
    { class: `wcard ws-${w.state}${mini ? " mini" : ""}`, dataset: { worker: w.id }, title: mini ? hwTitle : undefined },
    h("div", { class: "wtop" }, h("a", { class: "wname", href: `#/workers/${encodeURIComponent(w.id)}`, text: w.name, title: `${w.name} (${w.id}): its page, usage over time` }), h("span", { class: `wstate ws-${w.state}`, text: w.state, title: w.hold ? holdText(w.hold) : w.state })),
    w.hold && !mini ? h("div", { class: `hold hold-${w.hold.kind}`, text: holdText(w.hold) }) : null,
    mini
      ? h("div", { class: "wmeta muted" }, seen, " · ", running)
      : h("div", { class: "wmeta muted" }, seen, ` · v${w.version || "?"}`, w.update_available ? h("span", { class: "upd", text: " update available", title: "Another release is promoted; the worker moves to it between jobs if it runs with --auto-update" }) : null, w.update_error ? h("span", { class: "upd-err", text: " update refused", title: w.update_error }) : null, ` · ${plural(w.slots || 1, "slot")}`),
    mini ? null : h("div", { class: "whw muted", text: hwText, title: hwTitle }),
    bars,
    mini ? null : h("div", {}, running),
  );
}

/**
 * The overview's workers section. `setAll` takes a fresh list from the server, `update` one
 * worker's new state from the stream, `reload` refetches the list (a worker joined or left).
 */
export function workersPanel() {
  const sec = section("Workers", h("span", { class: "muted", id: "workers-count" }));
  sec.el.classList.add("wide");
  const wgrid = h("div", { class: "wgrid", id: "workers" });
  const offlineToggle = h("button", { type: "button", class: "btn small ghost", hidden: true });
  const moreToggle = h("button", { type: "button", class: "btn small ghost", hidden: true });
  const st = { workers: new Map(), showOffline: false, showAll: false };
  moreToggle.addEventListener("click", () => {
    st.showAll = !st.showAll;
    render();
  });
  sec.body.append(wgrid, h("div", { class: "wtoggles" }, moreToggle, offlineToggle));

  function render() {
    const all = [...st.workers.values()];
    const order = { busy: 0, idle: 1, draining: 2, paused: 3, quarantined: 4, offline: 5 };
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
    moreToggle.textContent = st.showAll ? "Show fewer" : `Show ${count(hiddenCount)} more`;
    if (!all.length) wgrid.append(h("p", { class: "muted", text: "No worker has registered yet. Start one with: gaia work --server URL --token TOKEN" }));
    else if (!shown.length) wgrid.append(h("p", { class: "muted", text: `No worker is online; ${plural(offline.length, "worker is", "workers are")} offline.` }));
    offlineToggle.hidden = offline.length <= 4;
    offlineToggle.textContent = st.showOffline ? `Hide ${count(offline.length)} offline` : `Show ${count(offline.length)} offline`;
    $("#workers-count", sec.el).textContent = `${count(all.length - offline.length)} online · ${count(offline.length)} offline`;
  }
  offlineToggle.addEventListener("click", () => {
    st.showOffline = !st.showOffline;
    render();
  });
  const renderSoon = debounce(render, 250);

  const ticker = setInterval(() => {
    for (const s of sec.el.querySelectorAll("[data-seen]")) s.textContent = `seen ${ago(Number(s.dataset.seen))}`;
  }, 5000);

  return {
    el: sec.el,
    setAll(list) {
      st.workers = new Map(list.map((x) => [x.id, x]));
      render();
    },
    update(w) {
      st.workers.set(w.id, w);
      renderSoon();
    },
    reload() {
      api("/api/v1/workers").then((w) => {
        st.workers = new Map(w.workers.map((x) => [x.id, x]));
        renderSoon();
      }, () => {});
    },
    destroy() {
      clearInterval(ticker);
      renderSoon.cancel();
    },
  };
}
