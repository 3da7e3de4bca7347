// A job's curve: its rows fetched downsampled on the server, and turned into chart points.
"use strict";

import { api } from "./api.js";

export const POINTS = 2000;

/** Fetches a job's rows downsampled to POINTS (and only the x range when zoomed). */
export async function fetchRows(id, x, range) {
  const p = new URLSearchParams({ points: String(POINTS), x });
  if (range) {
    p.set("from", String(range[0]));
    p.set("to", String(range[1]));
  }
  return api(`/api/v1/jobs/${id}/rows?${p}`);
}

const xOf = (r, axis) => (axis === "evals" ? r.evals : axis === "generation" ? r.generation : r.seq);

/** Turns rows into [x, y] points of one metric, sorted by x (downsampled rows are in order). */
export function pointsOf(rows, axis, metric) {
  const out = [];
  for (const r of rows) {
    const x = xOf(r, axis);
    if (x === undefined || x === null) continue;
    const y = metric in r ? r[metric] : (r.metrics || []).find((m) => m[0] === metric)?.[1];
    if (y === undefined || y === null) continue;
    out.push([x, y]);
  }
  out.sort((a, b) => a[0] - b[0]);
  return out;
}
