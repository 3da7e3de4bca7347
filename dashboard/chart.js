// GAIA's own small canvas charts: line charts (linear or log y, legend toggles, drag to zoom,
// hover read-out), box plots and histograms, each exportable as PNG. No dependencies.
//
// Every label that comes from outside (job names, methods, environments) is drawn on the canvas
// with fillText or set as textContent: nothing is ever parsed as HTML.
"use strict";

import { fmtNum } from "./format.js";

export const PALETTE = [
  "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c",
  "#0891b2", "#c026d3", "#65a30d", "#b45309", "#475569",
  "#e11d48", "#0d9488", "#7c3aed", "#ca8a04", "#1e40af",
];

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const FONT_BOLD = 'bold 12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    if (out.length > 50) break;
  }
  return out;
}

function logTicks(lo, hi) {
  // lo, hi are log10 values: ticks at 1, 2, 5 (and 3) times powers of ten, fewer when the range
  // spans many decades, and round linear values when it spans less than about one.
  const span = hi - lo;
  const mult = span <= 1.2 ? [1, 2, 3, 5] : span <= 3 ? [1, 2, 5] : [1];
  const out = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of mult) {
      const v = Math.log10(m) + e;
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  }
  if (out.length < 3) {
    const lin = niceTicks(Math.pow(10, lo), Math.pow(10, hi), 4).filter((v) => v > 0).map(Math.log10);
    if (lin.length > out.length) return lin;
  }
  const every = Math.ceil(out.length / 8);
  return out.length ? out.filter((_, i) => i % every === 0) : [lo, hi];
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

/** Downloads a blob under a file name. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The frame every chart shares: a title bar with buttons, a canvas that follows its box's size
 * (and the screen's pixel ratio), a read-out tooltip and an HTML legend.
 */
class Frame {
  constructor(parent, opts) {
    this.opts = Object.assign({ height: 260, title: "", xLabel: "", yLabel: "", file: "chart" }, opts);
    this.root = el("div", "chart");
    const head = el("div", "chart-head");
    this.titleEl = el("span", "chart-title", this.opts.title);
    this.tools = el("span", "chart-tools");
    const png = el("button", "btn small ghost", "PNG");
    png.type = "button";
    png.title = "Download this chart as a PNG image";
    png.addEventListener("click", () => this.exportPNG());
    this.tools.append(png);
    head.append(this.titleEl, this.tools);
    this.box = el("div", "chart-box");
    this.box.style.height = this.opts.height + "px";
    this.canvas = el("canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", this.opts.title || "chart");
    this.tip = el("div", "chart-tip");
    this.tip.hidden = true;
    this.sel = el("div", "chart-sel");
    this.sel.hidden = true;
    this.empty = el("div", "chart-empty", "no data yet");
    this.box.append(this.canvas, this.sel, this.tip, this.empty);
    this.legend = el("div", "chart-legend");
    this.root.append(head, this.box, this.legend);
    parent.append(this.root);
    this.margin = { l: 58, r: 14, t: 10, b: 30 };
    this.w = 0;
    this.h = 0;
    this.pending = false;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.box);
  }

  setTitle(t) {
    this.opts.title = t;
    this.titleEl.textContent = t;
    this.canvas.setAttribute("aria-label", t);
  }

  resize() {
    const r = this.box.getBoundingClientRect();
    if (r.width < 10) return;
    const dpr = window.devicePixelRatio || 1;
    this.w = r.width;
    this.h = r.height;
    this.canvas.width = Math.round(r.width * dpr);
    this.canvas.height = Math.round(r.height * dpr);
    this.canvas.style.width = r.width + "px";
    this.canvas.style.height = r.height + "px";
    this.draw();
  }

  /** Redraws at the next frame (many updates in one frame draw once). */
  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.drawNow();
    });
  }

  drawNow() {
    if (!this.w) return;
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    const has = this.render(ctx, this.w, this.h, false);
    this.empty.hidden = has;
  }

  destroy() {
    this.ro.disconnect();
    this.root.remove();
  }

  /** The chart as a PNG: title, plot and legend on a white background. */
  async exportPNG() {
    const W = 1200, H = 700;
    const c = document.createElement("canvas");
    c.width = W * 2;
    c.height = H * 2;
    const ctx = c.getContext("2d");
    ctx.scale(2, 2);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#111827";
    ctx.font = 'bold 16px system-ui, "DejaVu Sans", sans-serif';
    ctx.textBaseline = "top";
    ctx.fillText(this.opts.exportTitle || this.opts.title || "", 16, 12);
    const entries = this.legendEntries();
    const legendRows = Math.ceil(entries.length / 4);
    const legendH = legendRows * 18 + (entries.length ? 10 : 0);
    ctx.save();
    ctx.translate(0, 40);
    this.render(ctx, W, H - 40 - legendH, true);
    ctx.restore();
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    entries.forEach((e, i) => {
      const x = 16 + (i % 4) * ((W - 32) / 4);
      const y = H - legendH + 5 + Math.floor(i / 4) * 18 + 9;
      ctx.fillStyle = e.color;
      ctx.fillRect(x, y - 4, 14, 8);
      ctx.fillStyle = "#111827";
      ctx.fillText(e.label.slice(0, 48), x + 20, y);
    });
    const blob = await new Promise((res) => c.toBlob(res, "image/png"));
    if (blob) saveBlob(blob, (this.opts.file || "chart") + ".png");
    return blob;
  }

  legendEntries() {
    return [];
  }

  showTip(x, y, lines) {
    this.tip.replaceChildren();
    for (const [color, text] of lines) {
      const row = el("div", "tip-row");
      if (color) {
        const sw = el("span", "swatch");
        sw.style.background = color;
        row.append(sw);
      }
      row.append(document.createTextNode(text));
      this.tip.append(row);
    }
    this.tip.hidden = lines.length === 0;
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    let left = x + 14;
    if (left + tw > this.w) left = Math.max(0, x - tw - 14);
    this.tip.style.left = left + "px";
    this.tip.style.top = Math.max(0, Math.min(this.h - th, y - th / 2)) + "px";
  }

  axes(ctx, W, H, xs, ys, xfmt, yfmt, exportMode) {
    const m = this.margin;
    ctx.font = FONT;
    ctx.strokeStyle = exportMode ? "#e5e7eb" : getCss("--grid", "#e5e7eb");
    ctx.fillStyle = exportMode ? "#374151" : getCss("--muted", "#6b7280");
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (const t of ys.ticks) {
      const y = Math.round(ys.px(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(m.l, y);
      ctx.lineTo(W - m.r, y);
      ctx.stroke();
      ctx.fillText(yfmt(t), m.l - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of xs.ticks) {
      const x = Math.round(xs.px(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, m.t);
      ctx.lineTo(x, H - m.b);
      ctx.stroke();
      ctx.fillText(xfmt(t), x, H - m.b + 5);
    }
    ctx.strokeStyle = exportMode ? "#9ca3af" : getCss("--axis", "#9ca3af");
    ctx.beginPath();
    ctx.moveTo(m.l + 0.5, m.t);
    ctx.lineTo(m.l + 0.5, H - m.b + 0.5);
    ctx.lineTo(W - m.r, H - m.b + 0.5);
    ctx.stroke();
    if (this.opts.xLabel) {
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText(this.opts.xLabel, W - m.r, H - 1);
    }
    if (this.opts.yLabel) {
      ctx.save();
      ctx.translate(11, m.t + (H - m.t - m.b) / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(this.opts.yLabel, 0, 0);
      ctx.restore();
    }
  }
}

const cssCache = new Map();
function getCss(name, dflt) {
  if (!cssCache.has(name)) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    cssCache.set(name, v || dflt);
  }
  return cssCache.get(name);
}

function linScale(lo, hi, a, b, n) {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  return { lo, hi, ticks: niceTicks(lo, hi, n), px: (v) => a + ((v - lo) / (hi - lo)) * (b - a), inv: (p) => lo + ((p - a) / (b - a)) * (hi - lo) };
}

/** Index of the first point with x >= v (points sorted by x). */
function lowerBound(pts, v) {
  let lo = 0, hi = pts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pts[mid][0] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Lines over a numeric x axis. Series: {id, label, color, points: [[x, y], ...] sorted by x,
 * dash?, width?}. Options: logY, onZoom(range | null) — called after a drag (range [x0, x1]) or
 * a reset (null), so the owner can fetch finer data for the range and call setSeries again.
 */
export class LineChart extends Frame {
  constructor(parent, opts) {
    super(parent, opts);
    this.series = [];
    this.hidden = new Set(opts.hidden || []);
    this.view = null; // [x0, x1] while zoomed
    this.resetBtn = el("button", "btn small ghost", "Reset zoom");
    this.resetBtn.type = "button";
    this.resetBtn.hidden = true;
    this.resetBtn.title = "Show the whole run again";
    this.resetBtn.addEventListener("click", () => this.resetZoom());
    this.tools.prepend(this.resetBtn);
    this.canvas.title = "Drag across the chart to zoom in";
    this.bindPointer();
  }

  setSeries(series) {
    this.series = series;
    this.renderLegend();
    this.draw();
  }

  resetZoom() {
    this.view = null;
    this.resetBtn.hidden = true;
    if (this.opts.onZoom) this.opts.onZoom(null);
    this.draw();
  }

  zoomTo(x0, x1) {
    this.view = [Math.min(x0, x1), Math.max(x0, x1)];
    this.resetBtn.hidden = false;
    if (this.opts.onZoom) this.opts.onZoom(this.view);
    this.draw();
  }

  legendEntries() {
    return this.series.filter((s) => !this.hidden.has(s.id)).map((s) => ({ label: s.label, color: s.color }));
  }

  renderLegend() {
    this.legend.replaceChildren();
    if (this.series.length < 2 && !this.opts.alwaysLegend) return;
    for (const s of this.series) {
      const b = el("button", "legend-item");
      b.type = "button";
      b.setAttribute("aria-pressed", String(!this.hidden.has(s.id)));
      b.title = "Show or hide this line";
      const sw = el("span", "swatch");
      sw.style.background = s.color;
      if (s.dash) sw.classList.add("dashed");
      b.append(sw, document.createTextNode(s.label));
      b.addEventListener("click", () => {
        if (this.hidden.has(s.id)) this.hidden.delete(s.id);
        else this.hidden.add(s.id);
        b.setAttribute("aria-pressed", String(!this.hidden.has(s.id)));
        if (this.opts.onToggle) this.opts.onToggle(this.hidden);
        this.draw();
      });
      this.legend.append(b);
    }
  }

  scales(W, H) {
    const m = this.margin;
    const vis = this.series.filter((s) => !this.hidden.has(s.id) && s.points.length);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const s of vis) {
      const pts = s.points;
      if (pts[0][0] < x0) x0 = pts[0][0];
      if (pts[pts.length - 1][0] > x1) x1 = pts[pts.length - 1][0];
    }
    if (this.view) [x0, x1] = this.view;
    for (const s of vis) {
      const pts = s.points;
      const a = this.view ? Math.max(0, lowerBound(pts, x0) - 1) : 0;
      const b = this.view ? Math.min(pts.length, lowerBound(pts, x1) + 1) : pts.length;
      for (let i = a; i < b; i++) {
        let y = pts[i][1];
        if (y === null || !Number.isFinite(y)) continue;
        if (this.opts.logY) {
          if (y <= 0) continue;
          y = Math.log10(y);
        }
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    if (!Number.isFinite(x0) || !Number.isFinite(y0)) return null;
    const xs = linScale(x0, x1, m.l, W - m.r, Math.max(2, Math.floor((W - m.l) / 90)));
    let ys;
    if (this.opts.logY) {
      const pad = y1 > y0 ? (y1 - y0) * 0.05 : 0.5;
      ys = linScale(y0 - pad, y1 + pad, H - m.b, m.t, 5);
      ys.ticks = logTicks(ys.lo, ys.hi);
    } else {
      const pad = y1 > y0 ? (y1 - y0) * 0.06 : Math.max(Math.abs(y0) * 0.1, 1);
      ys = linScale(y0 - pad, y1 + pad, H - m.b, m.t, Math.max(2, Math.floor((H - m.t - m.b) / 40)));
    }
    return { xs, ys, vis };
  }

  render(ctx, W, H, exportMode) {
    const sc = this.scales(W, H);
    this.sc = sc;
    if (!sc) return false;
    const { xs, ys, vis } = sc;
    const yfmt = this.opts.logY ? (t) => fmtNum(Math.pow(10, t)) : fmtNum;
    this.axes(ctx, W, H, xs, ys, this.opts.xFormat || fmtNum, yfmt, exportMode);
    const m = this.margin;
    ctx.save();
    ctx.beginPath();
    ctx.rect(m.l, m.t, W - m.l - m.r, H - m.t - m.b);
    ctx.clip();
    let drawn = 0;
    for (const s of vis) {
      const pts = s.points;
      const a = this.view ? Math.max(0, lowerBound(pts, xs.lo) - 1) : 0;
      const b = this.view ? Math.min(pts.length, lowerBound(pts, xs.hi) + 1) : pts.length;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = s.width || 1.5;
      ctx.setLineDash(s.dash ? [5, 4] : []);
      ctx.lineJoin = "round";
      ctx.beginPath();
      let pen = false;
      for (let i = a; i < b; i++) {
        let y = pts[i][1];
        if (y === null || !Number.isFinite(y) || (this.opts.logY && y <= 0)) {
          pen = false;
          continue;
        }
        if (this.opts.logY) y = Math.log10(y);
        const px = xs.px(pts[i][0]), py = ys.px(y);
        if (pen) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        pen = true;
      }
      ctx.stroke();
      drawn += b - a;
      if (b - a === 1 && pen) {
        ctx.fillStyle = s.color;
        ctx.beginPath();
        ctx.arc(xs.px(pts[a][0]), ys.px(this.opts.logY ? Math.log10(pts[a][1]) : pts[a][1]), 2.5, 0, 7);
        ctx.fill();
      }
    }
    ctx.setLineDash([]);
    if (!exportMode && this.hoverX !== undefined && this.hoverX !== null) {
      ctx.strokeStyle = "rgba(17,24,39,0.35)";
      ctx.beginPath();
      ctx.moveTo(Math.round(this.hoverX) + 0.5, m.t);
      ctx.lineTo(Math.round(this.hoverX) + 0.5, H - m.b);
      ctx.stroke();
    }
    ctx.restore();
    // How many points are on screen: lets tests (and curious users) see the curve grow.
    if (!exportMode) this.canvas.dataset.points = String(drawn);
    return true;
  }

  bindPointer() {
    let start = null;
    const local = (e) => {
      const r = this.canvas.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    this.canvas.addEventListener("pointerdown", (e) => {
      if (!this.sc || e.button !== 0) return;
      const [x] = local(e);
      if (x < this.margin.l || x > this.w - this.margin.r) return;
      start = x;
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      const [x, y] = local(e);
      if (start !== null) {
        const a = Math.max(this.margin.l, Math.min(start, x));
        const b = Math.min(this.w - this.margin.r, Math.max(start, x));
        this.sel.hidden = false;
        this.sel.style.left = a + "px";
        this.sel.style.width = b - a + "px";
        this.sel.style.top = this.margin.t + "px";
        this.sel.style.height = this.h - this.margin.t - this.margin.b + "px";
        this.tip.hidden = true;
        return;
      }
      this.hover(x, y);
    });
    const end = (e) => {
      if (start === null) return;
      const [x] = local(e);
      const a = start;
      start = null;
      this.sel.hidden = true;
      if (Math.abs(x - a) > 6 && this.sc) {
        const xs = this.sc.xs;
        const clamp = (p) => Math.max(this.margin.l, Math.min(this.w - this.margin.r, p));
        this.zoomTo(xs.inv(clamp(a)), xs.inv(clamp(x)));
      }
    };
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", () => {
      start = null;
      this.sel.hidden = true;
    });
    this.canvas.addEventListener("pointerleave", () => {
      if (start !== null) return;
      this.tip.hidden = true;
      this.hoverX = null;
      this.draw();
    });
    this.canvas.addEventListener("dblclick", () => this.view && this.resetZoom());
  }

  hover(x, y) {
    if (!this.sc) return;
    const { xs, vis } = this.sc;
    if (x < this.margin.l || x > this.w - this.margin.r) {
      this.tip.hidden = true;
      this.hoverX = null;
      this.draw();
      return;
    }
    const xv = xs.inv(x);
    const lines = [[null, `${this.opts.xLabel || "x"} ${fmtNum(xv)}`]];
    for (const s of vis.slice(0, 12)) {
      const i = lowerBound(s.points, xv);
      const cands = [s.points[i - 1], s.points[i]].filter(Boolean);
      if (!cands.length) continue;
      const p = cands.reduce((a, b) => (Math.abs(a[0] - xv) <= Math.abs(b[0] - xv) ? a : b));
      if (Math.abs(xs.px(p[0]) - x) > 40) continue;
      lines.push([s.color, `${s.label}: ${fmtNum(p[1])}`]);
    }
    this.hoverX = x;
    this.showTip(x, y, lines.length > 1 ? lines : []);
    this.draw();
  }
}

/**
 * Box plots per category (quartiles, whiskers from min to max, mean marker, every value as a
 * dot). Groups: {label, color, q1, median, q3, min, max, mean, values: [..], note}.
 */
export class BoxChart extends Frame {
  constructor(parent, opts) {
    super(parent, opts);
    this.groups = [];
    this.margin = { l: 58, r: 14, t: 10, b: 42 };
    this.canvas.addEventListener("pointermove", (e) => {
      const r = this.canvas.getBoundingClientRect();
      this.hover(e.clientX - r.left, e.clientY - r.top);
    });
    this.canvas.addEventListener("pointerleave", () => (this.tip.hidden = true));
  }

  setGroups(groups) {
    this.groups = groups;
    this.draw();
  }

  legendEntries() {
    return this.groups.map((g) => ({ label: `${g.label} (n=${g.values.length})`, color: g.color }));
  }

  render(ctx, W, H, exportMode) {
    const gs = this.groups.filter((g) => g.values.length);
    if (!gs.length) return false;
    const m = this.margin;
    let lo = Infinity, hi = -Infinity;
    for (const g of gs) {
      lo = Math.min(lo, g.min);
      hi = Math.max(hi, g.max);
    }
    const pad = hi > lo ? (hi - lo) * 0.08 : Math.max(Math.abs(lo) * 0.1, 1);
    const ys = linScale(lo - pad, hi + pad, H - m.b, m.t, Math.max(2, Math.floor((H - m.t - m.b) / 40)));
    const slot = (W - m.l - m.r) / gs.length;
    const xs = { ticks: [], px: (v) => v };
    this.axes(ctx, W, H, xs, ys, () => "", fmtNum, exportMode);
    this.layout = [];
    ctx.font = FONT;
    gs.forEach((g, i) => {
      const cx = m.l + slot * (i + 0.5);
      const bw = Math.min(60, slot * 0.5);
      ctx.strokeStyle = g.color;
      ctx.fillStyle = g.color + "33";
      ctx.lineWidth = 1.5;
      const yq1 = ys.px(g.q1), yq3 = ys.px(g.q3);
      ctx.beginPath();
      ctx.moveTo(cx, ys.px(g.max));
      ctx.lineTo(cx, yq3);
      ctx.moveTo(cx, yq1);
      ctx.lineTo(cx, ys.px(g.min));
      ctx.moveTo(cx - bw / 4, ys.px(g.max));
      ctx.lineTo(cx + bw / 4, ys.px(g.max));
      ctx.moveTo(cx - bw / 4, ys.px(g.min));
      ctx.lineTo(cx + bw / 4, ys.px(g.min));
      ctx.stroke();
      ctx.fillRect(cx - bw / 2, yq3, bw, Math.max(1, yq1 - yq3));
      ctx.strokeRect(cx - bw / 2, yq3, bw, Math.max(1, yq1 - yq3));
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.moveTo(cx - bw / 2, ys.px(g.median));
      ctx.lineTo(cx + bw / 2, ys.px(g.median));
      ctx.stroke();
      // The values, jittered deterministically so the picture is stable.
      ctx.fillStyle = g.color;
      g.values.forEach((v, k) => {
        const j = ((k * 2654435761) % 1000) / 1000 - 0.5;
        ctx.beginPath();
        ctx.arc(cx + bw * 0.9 + j * bw * 0.4, ys.px(v), 2, 0, 7);
        ctx.fill();
      });
      // Mean: a diamond.
      const my = ys.px(g.mean);
      ctx.fillStyle = exportMode ? "#111827" : getCss("--fg", "#111827");
      ctx.beginPath();
      ctx.moveTo(cx, my - 4);
      ctx.lineTo(cx + 4, my);
      ctx.lineTo(cx, my + 4);
      ctx.lineTo(cx - 4, my);
      ctx.fill();
      ctx.fillStyle = exportMode ? "#374151" : getCss("--muted", "#6b7280");
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const label = g.label.length > 18 ? g.label.slice(0, 17) + "…" : g.label;
      ctx.fillText(label, cx, H - m.b + 6);
      ctx.fillText(`n=${g.values.length}`, cx, H - m.b + 20);
      this.layout.push({ x0: cx - slot / 2, x1: cx + slot / 2, g });
    });
    return true;
  }

  hover(x, y) {
    const hit = (this.layout || []).find((l) => x >= l.x0 && x < l.x1);
    if (!hit) {
      this.tip.hidden = true;
      return;
    }
    const g = hit.g;
    this.showTip(x, y, [
      [g.color, g.label],
      [null, `n ${g.values.length}${g.note ? " · " + g.note : ""}`],
      [null, `max ${fmtNum(g.max)} · q3 ${fmtNum(g.q3)}`],
      [null, `median ${fmtNum(g.median)} · mean ${fmtNum(g.mean)}`],
      [null, `q1 ${fmtNum(g.q1)} · min ${fmtNum(g.min)}`],
    ]);
  }
}

/**
 * A histogram of values, stacked by series: {label, color, values: [...]}.
 */
export class HistChart extends Frame {
  constructor(parent, opts) {
    super(parent, opts);
    this.series = [];
    this.bins = opts.bins || 20;
    this.canvas.addEventListener("pointermove", (e) => {
      const r = this.canvas.getBoundingClientRect();
      this.hover(e.clientX - r.left, e.clientY - r.top);
    });
    this.canvas.addEventListener("pointerleave", () => (this.tip.hidden = true));
  }

  setSeries(series) {
    this.series = series;
    this.legend.replaceChildren();
    for (const s of series) {
      const item = el("span", "legend-item static");
      const sw = el("span", "swatch");
      sw.style.background = s.color;
      item.append(sw, document.createTextNode(`${s.label} (${s.values.length})`));
      this.legend.append(item);
    }
    this.draw();
  }

  legendEntries() {
    return this.series.map((s) => ({ label: s.label, color: s.color }));
  }

  render(ctx, W, H, exportMode) {
    const all = this.series.flatMap((s) => s.values).filter(Number.isFinite);
    if (!all.length) return false;
    const m = this.margin;
    let lo = Math.min(...all), hi = Math.max(...all);
    if (!(hi > lo)) {
      lo -= 0.5;
      hi += 0.5;
    }
    const nb = this.bins;
    const width = (hi - lo) / nb;
    const counts = this.series.map((s) => {
      const c = new Array(nb).fill(0);
      for (const v of s.values) {
        if (!Number.isFinite(v)) continue;
        c[Math.min(nb - 1, Math.floor((v - lo) / width))]++;
      }
      return c;
    });
    const totals = new Array(nb).fill(0);
    counts.forEach((c) => c.forEach((n, i) => (totals[i] += n)));
    const ymax = Math.max(1, ...totals);
    const xs = linScale(lo, hi, m.l, W - m.r, Math.max(2, Math.floor((W - m.l) / 90)));
    const ys = linScale(0, ymax * 1.08, H - m.b, m.t, 5);
    ys.ticks = ys.ticks.filter((t) => Number.isInteger(t));
    this.axes(ctx, W, H, xs, ys, fmtNum, (t) => String(t), exportMode);
    const base = new Array(nb).fill(0);
    counts.forEach((c, si) => {
      ctx.fillStyle = this.series[si].color + "cc";
      c.forEach((n, i) => {
        if (!n) return;
        const x0 = xs.px(lo + i * width) + 1, x1 = xs.px(lo + (i + 1) * width) - 1;
        const y0 = ys.px(base[i]), y1 = ys.px(base[i] + n);
        ctx.fillRect(x0, y1, Math.max(1, x1 - x0), y0 - y1);
        base[i] += n;
      });
    });
    this.hist = { lo, width, nb, xs, counts };
    return true;
  }

  hover(x, y) {
    const h = this.hist;
    if (!h) return;
    const v = h.xs.inv(x);
    const i = Math.floor((v - h.lo) / h.width);
    if (i < 0 || i >= h.nb) {
      this.tip.hidden = true;
      return;
    }
    const lines = [[null, `${fmtNum(h.lo + i * h.width)} … ${fmtNum(h.lo + (i + 1) * h.width)}`]];
    this.series.forEach((s, si) => {
      if (h.counts[si][i]) lines.push([s.color, `${s.label}: ${h.counts[si][i]}`]);
    });
    this.showTip(x, y, lines);
  }
}
