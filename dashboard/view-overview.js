// The overview: job counts, the workers, the queue (running and the next queued), the best
// result per environment and method, the users' usage, and the activity log, kept live by the
// stream.
"use strict";

import { api } from "./api.js";
import { debounce, h, put, section, toast } from "./dom.js";
import { count, fmtNum } from "./format.js";
import { jobRow } from "./parts.js";
import { S } from "./session.js";
import { activityPanel } from "./view-activity.js";
import { usagePanel } from "./view-usage.js";
import { workersPanel } from "./view-workers.js";

export function overviewView() {
  const tiles = h("div", { class: "tiles" });
  const workers = workersPanel();
  const queue = section("Queue", h("a", { href: "#/jobs", class: "btn small ghost", text: "All jobs" }));
  const qtable = h("table", { class: "grid", id: "queue" });
  const qhead = h("thead", {}, h("tr", {}, ...["id", "job", "state", "owner", "worker", "progress", "best-ever", "ETA", ""].map((t) => h("th", { text: t }))));
  const qbody = h("tbody");
  const qfoot = h("p", { class: "muted small" });
  qtable.append(qhead, qbody);
  queue.body.append(h("div", { class: "scroll-x" }, qtable), qfoot);
  const best = section("Best per environment and method", h("a", { href: "#/charts", class: "btn small ghost", text: "Charts" }));
  const btable = h("table", { class: "grid", id: "best" });
  best.body.append(h("div", { class: "scroll-x" }, btable));
  const activity = activityPanel();
  const usage = usagePanel();
  const el = h("div", { class: "overview" }, tiles, workers.el, h("div", { class: "cols" }, h("div", { class: "col-main" }, queue.el, best.el), h("div", { class: "col-side" }, usage.el, activity.el)));
  const usageSoon = debounce(() => usage.load().catch(() => {}), 2000);

  const st = { running: new Map(), queued: new Map(), queuedTotal: 0, runningTotal: 0, summary: null };

  function renderTiles() {
    const s = st.summary;
    if (!s) return;
    const c = s.jobs;
    const w = s.workers;
    const tile = (label, n, cls, href) => h("a", { class: `tile ${cls}`, href }, h("span", { class: "tn", text: n }), h("span", { class: "tl", text: label }));
    put(tiles,
      tile("queued", count(c.queued), "st-queued", "#/jobs?state=queued"),
      tile("running", count(c.running), "st-running", "#/jobs?state=running"),
      tile("succeeded", count(c.succeeded), "st-succeeded", "#/jobs?state=succeeded"),
      tile("failed", count(c.failed + c.timed_out), "st-failed", "#/jobs?state=failed"),
      tile("cancelled", count(c.cancelled), "st-cancelled", "#/jobs?state=cancelled"),
      tile("lost", count(c.lost), "st-lost", "#/jobs?state=lost"),
      tile("workers online", `${count(w.idle + w.busy + w.draining)} / ${count(w.idle + w.busy + w.draining + w.offline)}`, "tile-workers", "#/"),
    );
  }

  function renderQueue() {
    // Bounded however many jobs the stream has told us about; the totals say how many more.
    const running = [...st.running.values()].sort((a, b) => a.id - b.id).slice(0, 30);
    const queued = [...st.queued.values()].sort((a, b) => (b.spec.priority || 0) - (a.spec.priority || 0) || a.id - b.id).slice(0, 15);
    st.runningTotal = Math.max(st.runningTotal, st.running.size);
    st.queuedTotal = Math.max(st.queuedTotal, st.queued.size);
    put(qbody, ...running.map((j) => jobRow(j)), ...queued.map((j) => jobRow(j)));
    if (!running.length && !queued.length) qbody.append(h("tr", {}, h("td", { colSpan: 9, class: "muted", text: "Nothing queued or running." })));
    const more = [];
    if (st.runningTotal > running.length) more.push(`${count(st.runningTotal - running.length)} more running`);
    if (st.queuedTotal > queued.length) more.push(`${count(st.queuedTotal - queued.length)} more queued (the newest are shown)`);
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
        h("td", { class: "num", text: `${count(g.finished)} / ${count(g.jobs)}` }),
        h("td", { class: "num", text: count(g.running) }),
      ),
    );
    put(btable, h("thead", {}, head), h("tbody", {}, ...rows));
    if (!rows.length) btable.append(h("tbody", {}, h("tr", {}, h("td", { colSpan: 8, class: "muted", text: "No experiment has reported a score yet." }))));
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

  async function refresh() {
    const [w, ev] = await Promise.all([api("/api/v1/workers"), api("/api/v1/events?limit=60"), loadQueue(), loadSummary(), usage.load()]);
    workers.setAll(w.workers);
    activity.setAll(ev.events);
    if (ev.events.length) S.lastEventId = Math.max(S.lastEventId, ev.events[ev.events.length - 1].id);
  }

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
      workers.destroy();
      summarySoon.cancel();
      queueSoon.cancel();
      usageSoon.cancel();
    },
    onLive(type, m) {
      if (type === "worker") {
        workers.update(m);
      } else if (type === "job") {
        st.running.delete(m.id);
        st.queued.delete(m.id);
        if (m.state === "running") st.running.set(m.id, m);
        else if (m.state === "queued") st.queued.set(m.id, m);
        queueRender();
      } else if (type === "event") {
        activity.add(m);
        if (/submitted|requeued|started/.test(m.kind)) queueSoon();
        if (/^job_(submitted|succeeded|failed|cancelled|lost|timed_out|started|requeued)|jobs_submitted/.test(m.kind)) {
          summarySoon();
          usageSoon();
        }
        if (m.kind.startsWith("worker")) workers.reload();
      }
    },
  };
}
