// How the dashboard writes values: one format per kind of value, used everywhere it shows one.
//
//   scores and metrics   fmtNum   best, best-ever, mean, σ, any metric, chart axes and read-outs:
//                                 four significant digits, trailing zeros dropped (487.3, -109.2,
//                                 0.01235, 1.235e-7); k / M / G from ten thousand (12.35k, 1.2M)
//   intervals            fmtInterval  an estimate and its CI as scores: 0.8123 [0.7, 0.912]
//   counts               count    jobs, rows, evaluations, generations, lines: whole numbers,
//                                 exact, with thousands separators (9,999, 51,234, 1,250,000), as
//                                 the command line writes them (gaia_core::human::count)
//   a count of things    plural   "1 job", "3 jobs", "0 errors": singular for exactly one
//   sizes                size     files and memory, binary units: 512 B, 15.6 KiB, 156 KiB,
//                                 1.5 GiB, 24 GiB (one decimal below 100, none from 100)
//   fractions            percent  progress and usage: whole percent, rounded down (a job at
//                                 99.6 % is not shown as done): 45%
//   durations            dur      12s, 3m 05s, 2h 07m, 1d 4h
//   hours of use         hours    worker and GPU hours from seconds: 0.25 h, 12.5 h, 1,234 h
//                                 (whole hours from a thousand on, written as counts; as
//                                 `gaia usage` writes them)
//   times                when / clock / ago   a date and time, a time of day, "5m ago"
"use strict";

/** A score or metric: four significant digits; k / M / G from ten thousand. */
export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  const sig = (x) => String(Number(x.toPrecision(4)));
  if (a === 0) return "0";
  if (a >= 1e9) return sig(v / 1e9) + "G";
  if (a >= 1e6) return sig(v / 1e6) + "M";
  if (a >= 1e4) return sig(v / 1e3) + "k";
  return sig(v);
}

/**
 * An estimate and its interval, each as a score: "0.8123 [0.7, 0.912]"; a value the server sent
 * as null (not a number: an infinite running time) as `missing`.
 */
export function fmtInterval(i, missing = "–") {
  if (!i) return "–";
  const v = (x) => (x === null || x === undefined ? missing : fmtNum(x));
  return `${v(i.estimate)} [${v(i.low)}, ${v(i.high)}]`;
}

/** Drops a fraction's trailing zeros (and the point): "1.50" → "1.5", "2.00" → "2". */
const trim = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);

/** A count (jobs, rows, evaluations, generations): exact, 950, 9,999, 51,234, 1,250,000. */
export function count(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  const digits = String(Math.abs(Math.round(n)));
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return n < 0 && Math.round(n) !== 0 ? `-${grouped}` : grouped;
}

/** "1 job", "3 jobs", "0 errors": a count and its noun, singular for exactly one. */
export function plural(n, noun, nouns = `${noun}s`) {
  return `${count(n)} ${n === 1 ? noun : nouns}`;
}

/** A size in bytes, in binary units: 512 B, 15.6 KiB, 156 KiB, 1.5 GiB. */
export function size(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 || Math.abs(v) >= 100 ? String(Math.round(v)) : trim(v.toFixed(1));
  return `${text} ${units[i]}`;
}

/** Hours of use (worker or GPU) from seconds: 0.25 h, 12.5 h, 1,234 h. */
export function hours(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return "–";
  const h = secs / 3600;
  if (Math.abs(h) < 10) return `${h.toFixed(2)} h`;
  if (Math.abs(h) < 1000) return `${h.toFixed(1)} h`;
  return `${count(h)} h`;
}

/** A size given in MiB (memory as workers report it and jobs require it). */
export const mib = (mb) => size(mb * 1024 * 1024);

/** A fraction 0..1 as a whole percent, rounded down: 0.996 → "99%". */
export function percent(frac) {
  if (frac === null || frac === undefined || !Number.isFinite(frac)) return "–";
  return `${Math.floor(frac * 100 + 1e-9)}%`;
}

export const ago = (ms) => {
  if (!ms) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
};
export const dur = (ms) => {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
};
export const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
export const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
export const toCsv = (header, rows) => [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
