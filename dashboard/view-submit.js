// The submit form: one job of any kind, or several seeds of an experiment.
"use strict";

import { api } from "./api.js";
import { h, put, toast } from "./dom.js";
import { adminButton } from "./parts.js";
import { S, isAdmin } from "./session.js";

/** "1-3,7" → [1, 2, 3, 7]; "" → [null]. */
function parseSeeds(s) {
  s = s.trim();
  if (!s) return [null];
  const out = [];
  for (const part of s.split(/[,\s]+/).filter(Boolean)) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) throw new Error(`seed "${part}" is not a number or a range like 1-5`);
    const a = Number(m[1]), b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a || b - a > 10000) throw new Error(`seed range "${part}" is backwards or too long`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** Params: a JSON object, or lines of key=value (numbers and true/false are typed). */
function parseParams(s) {
  s = s.trim();
  if (!s) return {};
  if (s.startsWith("{")) {
    const v = JSON.parse(s);
    if (typeof v !== "object" || Array.isArray(v) || v === null) throw new Error("params must be a JSON object");
    return v;
  }
  const out = {};
  for (const line of s.split(/\n/).map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf("=");
    if (i < 1) throw new Error(`params line "${line}" is not key=value`);
    const k = line.slice(0, i).trim(), v = line.slice(i + 1).trim();
    out[k] = v === "true" ? true : v === "false" ? false : v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v;
  }
  return out;
}

export function submitView() {
  const f = (label, input, hint) => h("div", { class: "field" }, h("label", { for: input.id, text: label }), input, hint ? h("span", { class: "hint", text: hint }) : null);
  const kind = h("select", { id: "s-kind", name: "kind" }, ...["experiment", "command", "reverse", "hash", "sum", "upper", "wait"].map((k) => h("option", { value: k, text: k })));
  const method = h("input", { id: "s-method", name: "method", value: "cma_es", attrs: { list: "methods" }, required: true });
  const env = h("input", { id: "s-env", name: "env", value: "CartPole-v1", attrs: { list: "envs" } });
  const maxEvals = h("input", { id: "s-max-evals", name: "max_evals", type: "number", min: 1, value: 100000 });
  const seeds = h("input", { id: "s-seeds", name: "seeds", placeholder: "e.g. 1-5 or 1,2,3", value: "" });
  const params = h("textarea", { id: "s-params", name: "params", rows: 4, placeholder: "popsize=16\nsigma0=0.5\n(or a JSON object)" });
  const name = h("input", { id: "s-name", name: "name", placeholder: "optional label" });
  const study = h("input", { id: "s-study", name: "study", placeholder: "optional study name" });
  const priority = h("input", { id: "s-priority", name: "priority", type: "number", value: 0 });
  const gpus = h("input", { id: "s-gpus", name: "gpus", type: "number", min: 0, value: 0 });
  const memory = h("input", { id: "s-memory", name: "memory_mb", type: "number", min: 0, value: 0 });
  const tags = h("input", { id: "s-tags", name: "tags", placeholder: "comma-separated, e.g. cuda12,lab-a" });
  const attempts = h("input", { id: "s-attempts", name: "max_attempts", type: "number", min: 1, max: 100, value: 3 });
  const timeout = h("input", { id: "s-timeout", name: "timeout_secs", type: "number", min: 1, placeholder: "none" });
  const argv = h("input", { id: "s-argv", name: "argv", placeholder: "python3 train.py --lr 0.1" });
  const input = h("input", { id: "s-input", name: "input", placeholder: "input of a built-in job" });
  const methods = h("datalist", { id: "methods" }, ...["cma_es", "openai_es", "random_search", "island_model"].map((m) => h("option", { value: m })));
  const envs = h("datalist", { id: "envs" }, ...["CartPole-v1", "sphere", "rastrigin", "rosenbrock"].map((m) => h("option", { value: m })));
  const preview = h("p", { class: "muted", id: "s-preview" });
  const result = h("div", { id: "s-result" });
  const expOnly = [f("method", method), f("environment", env), f("max evals", maxEvals), f("seeds", seeds, "one job per seed"), f("params", params, "key=value per line, or JSON")];
  const cmdOnly = [f("argv", argv, "split on spaces; runs only on workers started with --allow-commands")];
  const inOnly = [f("input", input)];
  const submit = adminButton("Submit", { class: "btn primary", id: "s-submit", type: "submit" });
  const form = h(
    "form",
    { class: "submit card", id: "submit-form" },
    h("h2", { text: "Submit jobs" }),
    h("div", { class: "fields" }, f("kind", kind), ...expOnly, ...cmdOnly, ...inOnly, f("name", name), f("study", study), f("priority", priority, "higher runs first"), f("GPUs", gpus), f("memory (MiB)", memory), f("tags", tags, "the worker must carry all"), f("max attempts", attempts), f("timeout (s)", timeout)),
    methods,
    envs,
    preview,
    h("div", { class: "actions" }, submit, isAdmin() ? null : h("span", { class: "muted", text: `This ${S.who ? S.who.scope : ""} token may look but not submit: log in with an admin token to submit jobs.` })),
    result,
  );

  function specs() {
    const k = kind.value;
    const base = { kind: k, priority: Number(priority.value || 0), max_attempts: Number(attempts.value || 3), requirements: { gpus: Number(gpus.value || 0), memory_mb: Number(memory.value || 0), tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) } };
    if (name.value.trim()) base.name = name.value.trim();
    if (study.value.trim()) base.study = study.value.trim();
    if (timeout.value) base.timeout_secs = Number(timeout.value);
    if (k === "experiment") {
      const p = parseParams(params.value);
      return parseSeeds(seeds.value).map((s) => {
        const spec = Object.assign({}, base, { method: method.value.trim(), env: env.value.trim() || undefined, max_evals: Number(maxEvals.value) || undefined });
        if (Object.keys(p).length) spec.params = p;
        if (s !== null) spec.seed = s;
        return spec;
      });
    }
    if (k === "command") return [Object.assign(base, { argv: argv.value.trim().split(/\s+/).filter(Boolean) })];
    return [Object.assign(base, { input: input.value })];
  }

  function update() {
    const k = kind.value;
    for (const x of expOnly) x.hidden = k !== "experiment";
    for (const x of cmdOnly) x.hidden = k !== "command";
    for (const x of inOnly) x.hidden = k === "experiment" || k === "command";
    try {
      const n = specs().length;
      preview.textContent = `Will submit ${n} job${n === 1 ? "" : "s"}.`;
      preview.className = "muted";
    } catch (e) {
      preview.textContent = e.message;
      preview.className = "error";
    }
  }
  form.addEventListener("input", update);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!isAdmin()) return;
    let list;
    try {
      list = specs();
    } catch (x) {
      preview.textContent = x.message;
      preview.className = "error";
      return;
    }
    try {
      const ids = list.length === 1 ? [(await api("/api/v1/jobs", { body: list[0] })).id] : (await api("/api/v1/jobs/batch", { body: { jobs: list } })).ids;
      put(result, h("p", { class: "ok" }, `Submitted ${ids.length} job${ids.length === 1 ? "" : "s"}: `, ...ids.slice(0, 50).flatMap((id) => [h("a", { href: `#/jobs/${id}`, text: `#${id}` }), " "]), ids.length > 1 ? h("a", { href: `#/charts?jobs=${ids.slice(0, 15).join(",")}`, text: "compare curves" }) : null));
      toast(`Submitted ${ids.length} job${ids.length === 1 ? "" : "s"}`);
    } catch (x) {
      put(result, h("p", { class: "error", text: `Refused: ${x.message}` }));
    }
  });
  api("/api/v1/summary")
    .then((s) => {
      const ms = new Set(["cma_es", "openai_es", "random_search", "island_model", ...s.groups.map((g) => g.method)]);
      const es = new Set(["CartPole-v1", "sphere", "rastrigin", "rosenbrock", ...s.groups.map((g) => g.env)]);
      put(methods, ...[...ms].map((m) => h("option", { value: m })));
      put(envs, ...[...es].map((m) => h("option", { value: m })));
    })
    .catch(() => {});
  update();
  return { el: form, needs: {} };
}
