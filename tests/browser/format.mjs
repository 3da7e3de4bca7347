// Unit tests of dashboard/format.js, the dashboard's one home for how values are written (one
// format per kind of value). A pure module: node imports it as the browser does. Run by
// tests/dashboard.rs; by hand: node tests/browser/format.mjs
import assert from "node:assert/strict";
import { count, dur, fmtInterval, fmtNum, hours, mib, percent, plural, size } from "../../dashboard/format.js";

const cases = {
  // Scores and metrics: four significant digits, trailing zeros dropped; k / M / G from 10,000.
  score: [
    [fmtNum, 487.34, "487.3"],
    [fmtNum, -109.2, "-109.2"],
    [fmtNum, -1304.7, "-1305"],
    [fmtNum, -1285, "-1285"],
    [fmtNum, 0.5, "0.5"],
    [fmtNum, 0.0123456, "0.01235"],
    [fmtNum, 1.23456e-7, "1.235e-7"],
    [fmtNum, 0, "0"],
    [fmtNum, 12345, "12.35k"],
    [fmtNum, 1234567, "1.235M"],
    [fmtNum, null, "–"],
    [fmtNum, Infinity, "∞"],
  ],
  // Intervals: the estimate and bounds as scores (human::interval writes the same); an infinite
  // bound, sent as null, as the caller says.
  interval: [
    [fmtInterval, { estimate: 0.81234, low: 0.7, high: 0.912 }, "0.8123 [0.7, 0.912]"],
    [(i) => fmtInterval(i, "∞"), { estimate: 2100, low: 700, high: null }, "2100 [700, ∞]"],
    [fmtInterval, null, "–"],
  ],
  // Counts: exact, with thousands separators, as the command line writes them.
  count: [
    [count, 950, "950"],
    [count, 9999, "9,999"],
    [count, 10000, "10,000"],
    [count, 51234, "51,234"],
    [count, 100000, "100,000"],
    [count, 1250000, "1,250,000"],
    [count, -1234, "-1,234"],
    [count, undefined, "–"],
  ],
  // Sizes: binary units, one decimal below 100, none from 100; never "15.6k B".
  size: [
    [size, 0, "0 B"],
    [size, 512, "512 B"],
    [size, 1023, "1023 B"],
    [size, 1024, "1 KiB"],
    [size, 15974, "15.6 KiB"],
    [size, 159744, "156 KiB"],
    [size, 1.5 * 2 ** 30, "1.5 GiB"],
    [mib, 512, "512 MiB"],
    [mib, 8192, "8 GiB"],
    [mib, 24576, "24 GiB"],
  ],
  // Fractions: whole percent, rounded down, so a job short of its end never shows 100%.
  percent: [
    [percent, 0.45, "45%"],
    [percent, 0.29, "29%"],
    [percent, 0.996, "99%"],
    [percent, 1, "100%"],
  ],
  // Hours of use from seconds, as `gaia usage` writes them.
  hours: [
    [hours, 900, "0.25 h"],
    [hours, 45_000, "12.5 h"],
    [hours, 3600 * 1234, "1,234 h"],
    [hours, 3600 * 51234, "51,234 h"],
    [hours, null, "–"],
  ],
  duration: [
    [dur, 12_000, "12s"],
    [dur, 185_000, "3m 05s"],
    [dur, 7_620_000, "2h 07m"],
  ],
};
for (const [kind, list] of Object.entries(cases)) {
  for (const [fn, v, want] of list) assert.equal(fn(v), want, `${kind}: ${fn.name}(${v})`);
}
// A count of things: singular for exactly one ("1 line", not "1 lines").
assert.equal(plural(1, "line"), "1 line");
assert.equal(plural(2, "line"), "2 lines");
assert.equal(plural(0, "error"), "0 errors");
assert.equal(plural(12345, "job"), "12,345 jobs");
assert.equal(plural(1, "worker is", "workers are"), "1 worker is");
console.log(`format.js: ${Object.values(cases).flat().length + 5} checks passed`);
