// How the dashboard writes values, one format per kind of value.
"use strict";

/** A short human form of a number: 1.23k, 4.5M, 0.00012 → 1.2e-4. */
export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  // Three significant digits, without trailing zeros after the point.
  const sig = (x) => String(Number(x.toPrecision(3)));
  if (a === 0) return "0";
  if (a >= 1e9) return sig(v / 1e9) + "G";
  if (a >= 1e6) return sig(v / 1e6) + "M";
  if (a >= 1e4) return sig(v / 1e3) + "k";
  if (a >= 100) return v.toFixed(1).replace(/\.0$/, "");
  if (a >= 0.01) return String(Number(v.toPrecision(4)));
  return sig(v);
}

/** A count of things (jobs, rows, evaluations): exact below 10,000, then 12.3k, 1.23M. */
export function count(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  return Math.abs(n) < 1e4 ? String(Math.round(n)) : fmtNum(n);
}

/** "1 job", "3 jobs", "0 errors": a count and its noun, singular for exactly one. */
export function plural(n, noun, nouns = `${noun}s`) {
  return `${count(n)} ${n === 1 ? noun : nouns}`;
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
export const mib = (mb) => (mb >= 1024 ? `${(mb / 1024).toFixed(mb >= 10240 ? 0 : 1)} GiB` : `${mb} MiB`);

function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
export const toCsv = (header, rows) => [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
