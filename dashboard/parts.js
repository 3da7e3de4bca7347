// Pieces several views show: a job's one-line description, state badges, progress bars, the
// buttons that need a token that may act, and a job's row in the overview's queue and the jobs
// list.
"use strict";

import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { count, dur, fmtNum, percent, plural } from "./format.js";
import { S, isAdmin, mayActOn, maySubmit } from "./session.js";

export function describe(spec) {
  if (!spec) return "";
  switch (spec.kind || "experiment") {
    case "experiment":
      // The server sends specs normalised: an experiment always has its env and budget.
      return `${spec.method} ${spec.env} ${plural(spec.max_evals, "eval")}${spec.seed !== undefined && spec.seed !== null ? ` seed ${spec.seed}` : ""}`;
    case "command":
      return (spec.argv || []).join(" ");
    default: {
      const inp = spec.input || "";
      return `${spec.kind} ${JSON.stringify(inp.length > 40 ? inp.slice(0, 40) + "…" : inp)}`;
    }
  }
}
export const jobTitle = (j) => j.spec.name || describe(j.spec);

export const TERMINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost"]);

/**
 * Whether job snapshot `b` is at least as new as `a`. Snapshots arrive on two paths (the answer
 * to a request, and the event stream), so an older one can arrive last: a job that ended never
 * goes back to running, and progress never shrinks within an attempt.
 */
export function newer(a, b) {
  if (!a) return true;
  if (a.attempt !== b.attempt) return b.attempt > a.attempt;
  if (TERMINAL.has(a.state) && !TERMINAL.has(b.state)) return false;
  return (b.progress?.rows ?? 0) >= (a.progress?.rows ?? 0);
}

export function badge(state) {
  return h("span", { class: `badge st-${state}`, text: state.replace("_", " ") });
}

/** A button that needs an admin token: disabled with the reason as its tooltip otherwise. */
export function adminButton(label, props) {
  const b = h("button", Object.assign({ type: "button", class: "btn" }, props, { text: label }));
  if (!isAdmin()) {
    b.disabled = true;
    const why = `needs an admin token (this token's scope is ${S.who ? S.who.scope : "unknown"})`;
    b.title = why;
    return h("span", { class: "why", title: why }, b);
  }
  return b;
}

/** A button that needs a token that may submit (submit or admin): disabled with the reason otherwise. */
export function submitButton(label, props) {
  const b = h("button", Object.assign({ type: "button", class: "btn" }, props, { text: label }));
  if (!maySubmit()) {
    b.disabled = true;
    const why = `needs an admin token or a submit token (this token's scope is ${S.who ? S.who.scope : "unknown"})`;
    b.title = why;
    return h("span", { class: "why", title: why }, b);
  }
  return b;
}

/**
 * A button that changes something `owner` owns: enabled for an admin token and for a submit
 * token of that user, disabled with the reason as its tooltip otherwise.
 */
export function ownerButton(label, props, owner) {
  const b = h("button", Object.assign({ type: "button", class: "btn" }, props, { text: label }));
  if (!mayActOn(owner)) {
    b.disabled = true;
    const mine = S.who && S.who.scope === "submit";
    const why = mine
      ? `belongs to ${owner}: needs an admin token or a submit token of ${owner} (this one is ${S.who.user}'s)`
      : `needs an admin token or a submit token of ${owner} (this token's scope is ${S.who ? S.who.scope : "unknown"})`;
    b.title = why;
    return h("span", { class: "why", title: why }, b);
  }
  return b;
}

/** Who owns a job, marked when it is the token's own user. */
export function ownerCell(owner) {
  const mine = S.who && S.who.user === owner;
  return h("td", { class: `owner${mine ? " mine" : ""}`, text: owner || "admin", title: mine ? "yours" : `submitted by ${owner}` });
}

export function progressBar(frac, label) {
  const f = Math.max(0, Math.min(1, frac || 0));
  const fill = h("span", { class: "fill" });
  fill.style.width = `${(f * 100).toFixed(1)}%`;
  return h("span", { class: "progress", title: label || percent(f) }, fill, h("span", { class: "progress-text", text: label || percent(f) }));
}

// The server's estimate (seconds left), and whether it is an upper bound (the whole budget; the
// experiment may stop early): { ms, bound } or null.
export function eta(job) {
  const p = job.progress;
  if (job.state !== "running" || !p || p.eta_secs === undefined || p.eta_secs === null) return null;
  return { ms: p.eta_secs * 1000, bound: !!p.eta_bound };
}

/** "≤ 6m 32s" for an upper bound, "6m 32s" for an estimate. */
export function etaText(e) {
  return `${e.bound ? "≤ " : ""}${dur(e.ms)}`;
}

export function jobRow(j, opts = {}) {
  const p = j.progress || {};
  // A job that succeeded is done, even when it stopped early (solved) short of its budget.
  const frac = j.state === "succeeded" ? 1 : (p.fraction ?? 0);
  const evals = p.evals !== null && p.evals !== undefined ? `${count(p.evals)} / ${count(j.spec.max_evals || 0)}` : null;
  const e = eta(j);
  const cancel = !TERMINAL.has(j.state)
    ? ownerButton(j.cancel_requested ? "…" : "✕", {
        class: "btn small danger icon",
        title: `Cancel job ${j.id}`,
        attrs: { "aria-label": `Cancel job ${j.id}` },
        disabled: j.cancel_requested,
        dataset: { cancel: String(j.id) },
        onclick: async (ev) => {
          ev.preventDefault();
          ev.stopPropagation();
          if (!confirm(`Cancel job ${j.id}?`)) return;
          try {
            await api(`/api/v1/jobs/${j.id}/cancel`, { method: "POST" });
            toast(`Job ${j.id}: cancel sent`);
          } catch (x) {
            toast(`Cancel failed: ${x.message}`, "error");
          }
        },
      }, j.owner)
    : null;
  const cells = [
    h("td", { class: "num" }, h("a", { href: `#/jobs/${j.id}`, text: `#${j.id}` })),
    h("td", { class: "jname" }, h("a", { href: `#/jobs/${j.id}`, class: "plain", text: jobTitle(j), title: describe(j.spec) })),
    h("td", {}, badge(j.state)),
    ownerCell(j.owner),
    h("td", { class: "muted wk", text: j.worker_name || (j.state === "queued" ? `prio ${j.spec.priority || 0}` : "–") }),
    h("td", { class: "prog" }, j.state === "queued" ? h("span", { class: "muted", text: `waiting ${dur(Date.now() - j.submitted_at)}` }) : progressBar(frac, evals ? `${evals}` : undefined)),
    h("td", { class: "num", text: fmtNum(p.best_ever ?? p.best) }),
    h("td", { class: "num muted", title: e !== null ? (e.bound ? "time left at most (the whole budget; it may stop early)" : "estimated time left") : "run time", text: e !== null ? etaText(e) : j.started_at ? dur((j.finished_at || Date.now()) - j.started_at) : "–" }),
  ];
  if (opts.cancel !== false) cells.push(h("td", { class: "act" }, cancel));
  return h("tr", { dataset: { job: String(j.id) }, class: `st-row-${j.state}` }, ...cells);
}

/** "3 succeeded, 1 running": a study's (or a cell's) jobs per state, in lifecycle order. */
export function statesText(states) {
  const order = ["running", "queued", "succeeded", "failed", "timed_out", "cancelled", "lost"];
  return order
    .filter((s) => states && states[s])
    .map((s) => `${count(states[s])} ${s.replace("_", " ")}`)
    .join(", ");
}

/** A study's (or a cell's) ETA as the server estimated it: a duration, "done", or why not known. */
export function studyEta(p) {
  if (!p) return "–";
  if (p.eta_note === "done") return "done";
  if (p.eta_secs !== null && p.eta_secs !== undefined) return dur(p.eta_secs * 1000);
  return p.eta_note ? `unknown (${p.eta_note})` : "unknown";
}
