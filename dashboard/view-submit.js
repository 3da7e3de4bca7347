// The submit form: one job of any kind, or a study, with the command line's rules.
//
// As `gaia submit`: a study name makes it a study, submitted through POST /api/v1/studies (the
// study's record, its duplicate check, its sweep). The sweep fields go to the server as typed
// (methods `a,b`, seeds `1..5,10`, one `key=v1,v2` params line per swept param) and the server
// reads them with the command line's grammar, so this form has no parser of its own; a dry run
// previews how many jobs that is. Without a study name it is one plain job (one seed at most).
"use strict";

import { api } from "./api.js";
import { debounce, h, put, toast } from "./dom.js";
import { count, plural } from "./format.js";
import { submitButton } from "./parts.js";
import { S, maySubmit } from "./session.js";

/** Above this many jobs a study must be confirmed (the server's CONFIRM_STUDY_JOBS). */
const CONFIRM_STUDY_JOBS = 10_000;

/**
 * The params field: a JSON object (fixed params), or `key=value` lines. A line's value is JSON
 * if it parses (`64`, `0.3`, `[32,32]`, `true`), else a string, as `gaia submit --param` reads
 * it. Answers `{ fixed, lines }`: the JSON object, or the lines as typed.
 */
function readParams(text) {
  const s = text.trim();
  if (!s) return { fixed: {}, lines: [] };
  if (s.startsWith("{")) {
    let v;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new Error(`params: not valid JSON (${e.message})`);
    }
    if (typeof v !== "object" || Array.isArray(v) || v === null) throw new Error("params must be a JSON object");
    return { fixed: v, lines: [] };
  }
  const lines = s.split(/\n/).map((l) => l.trim()).filter(Boolean);
  for (const line of lines) {
    const i = line.indexOf("=");
    if (i < 0) throw new Error(`params line "${line}": expected KEY=VALUE`);
    if (!line.slice(0, i).trim()) throw new Error(`params line "${line}": the key is empty`);
  }
  return { fixed: {}, lines };
}

/** One `key=value` line as a plain job's param (the value typed as `gaia submit --param` does). */
function paramOf(line) {
  const i = line.indexOf("=");
  const v = line.slice(i + 1).trim();
  let value;
  try {
    value = JSON.parse(v);
  } catch {
    value = v;
  }
  return [line.slice(0, i).trim(), value];
}

/** A plain job's seed: empty (none) or one whole number; a sweep asks for a study name. */
function plainSeed(text) {
  const s = text.trim();
  if (!s) return undefined;
  if (/^\d+$/.test(s) && Number.isSafeInteger(Number(s))) return Number(s);
  if (/[,]|\.\./.test(s)) throw new Error(`seeds "${s}" sweep a study: give a study name (or one seed)`);
  throw new Error(`seed "${s}" is not a whole number ≥ 0 (several seeds, in a study: 1..5 or 1,2,7)`);
}

/**
 * The server's message for a refused study, without the JSON decoder's wrapping ("invalid JSON
 * body: … at line 1 column 80"): the user typed into a form, not JSON.
 */
function refusal(e) {
  const m = e.message.replace(/^invalid JSON body: /, "").replace(/ at line \d+ column \d+$/, "");
  // A repeated definition: the form's way to submit it again is the checkbox, not a flag.
  return e.status === 409 ? `${m.replace(/; pass --again.*$/, "")} — tick “submit again” to submit it once more.` : m;
}

export function submitView() {
  const f = (label, input, hint) => h("div", { class: "field" }, h("label", { for: input.id, text: label }), input, hint ? h("span", { class: "hint", text: hint }) : null);
  const kind = h("select", { id: "s-kind", name: "kind" }, ...["experiment", "command", "reverse", "hash", "sum", "upper", "wait"].map((k) => h("option", { value: k, text: k })));
  const method = h("input", { id: "s-method", name: "method", value: "cma_es", attrs: { list: "methods" }, required: true });
  const env = h("input", { id: "s-env", name: "env", value: "CartPole-v1", attrs: { list: "envs" } });
  const maxEvals = h("input", { id: "s-max-evals", name: "max_evals", type: "number", min: 1, value: 100000 });
  const seeds = h("input", { id: "s-seeds", name: "seeds", placeholder: "e.g. 3; in a study 1..5 or 1,2,7", value: "" });
  const params = h("textarea", { id: "s-params", name: "params", rows: 4, placeholder: "pop_size=16\nsigma0=0.5\n(or a JSON object)" });
  const name = h("input", { id: "s-name", name: "name", placeholder: "optional label" });
  const study = h("input", { id: "s-study", name: "study", placeholder: "optional: makes it a study" });
  const priority = h("input", { id: "s-priority", name: "priority", type: "number", value: 0 });
  const gpus = h("input", { id: "s-gpus", name: "gpus", type: "number", min: 0, value: 0 });
  const memory = h("input", { id: "s-memory", name: "memory_mb", type: "number", min: 0, value: 0 });
  const tags = h("input", { id: "s-tags", name: "tags", placeholder: "comma-separated, e.g. cuda12,lab-a" });
  const attempts = h("input", { id: "s-attempts", name: "max_attempts", type: "number", min: 1, max: 100, value: 3 });
  const timeout = h("input", { id: "s-timeout", name: "timeout_secs", type: "number", min: 1, placeholder: "none" });
  const argv = h("input", { id: "s-argv", name: "argv", placeholder: "python3 train.py --lr 0.1" });
  const input = h("input", { id: "s-input", name: "input", placeholder: "input of a built-in job" });
  const sampler = h("select", { id: "s-sampler", name: "sampler" }, ...["grid", "random", "sobol", "tpe"].map((k) => h("option", { value: k, text: k })));
  const samples = h("input", { id: "s-samples", name: "samples", type: "number", min: 1, placeholder: "with a sampler" });
  const sampleSeed = h("input", { id: "s-sample-seed", name: "sample_seed", type: "number", min: 0, placeholder: "0" });
  const parallel = h("input", { id: "s-parallel", name: "parallel", type: "number", min: 1, placeholder: "4 (tpe)" });
  const earlyStop = h("input", { id: "s-early-stop", name: "early_stop", placeholder: "e.g. asha(metric=best_ever, min_evals=5000, eta=3)" });
  const again = h("input", { type: "checkbox", id: "s-again", name: "again" });
  const againLabel = h("label", { class: "small", for: "s-again", title: "Submit the same definition once more: its jobs are added to the study again" }, again, " submit again");
  const methods = h("datalist", { id: "methods" });
  const envs = h("datalist", { id: "envs" }, ...["CartPole-v1", "sphere", "rastrigin", "rosenbrock"].map((m) => h("option", { value: m })));
  const preview = h("p", { class: "muted", id: "s-preview" });
  const result = h("div", { id: "s-result" });
  const expOnly = [
    f("method", method, "in a study, a,b sweeps methods"),
    f("environment", env, "in a study, a,b sweeps environments"),
    f("max evals", maxEvals),
    f("seeds", seeds, "one seed; in a study 1..5, 1,2,7 or 1..3,10 (one job each)"),
    f("params", params, "key=value per line, or a JSON object (fixed); in a study each key=v1,v2 line sweeps"),
    f("study", study, "a study name makes it a study: one job per combination, recorded under that name"),
    f("sampler", sampler, "study: grid runs every combination; random, sobol and tpe draw --samples configurations (params may then be ranges: lr=loguniform(1e-3,1e-1), x=uniform(0,1), n=int(2,8))"),
    f("samples", samples, "study with a sampler: how many configurations"),
    f("sample seed", sampleSeed, "the same seed draws the same configurations"),
    f("parallel", parallel, "tpe: configurations in flight"),
    f("early stop", earlyStop, "study: asha(metric=best_ever, min_evals=N, eta=3) or median(metric=best_ever, min_evals=N, every=M); stopped jobs end pruned"),
  ];
  const cmdOnly = [f("argv", argv, "split on spaces; runs only on workers started with --allow-commands")];
  const inOnly = [f("input", input)];
  const submit = submitButton("Submit", { class: "btn primary", id: "s-submit", type: "submit" });
  const form = h(
    "form",
    { class: "submit card", id: "submit-form" },
    h("h2", { text: "Submit jobs" }),
    h("div", { class: "fields" }, f("kind", kind), ...expOnly, ...cmdOnly, ...inOnly, f("name", name), f("priority", priority, "higher runs first"), f("GPUs", gpus), f("memory (MiB)", memory), f("tags", tags, "the worker must carry all"), f("max attempts", attempts), f("timeout (s)", timeout)),
    methods,
    envs,
    preview,
    h("div", { class: "actions" }, submit, againLabel, maySubmit() ? h("span", { class: "muted", id: "s-owner", text: `submitted as ${S.who.user}` }) : h("span", { class: "muted", text: `This ${S.who ? S.who.scope : ""} token may look but not submit: log in with an admin token or a submit token to submit jobs.` })),
    result,
  );

  /** What every job starts from: everything but the method, environment, seed and params. */
  function base(k) {
    const b = { kind: k, priority: Number(priority.value || 0), max_attempts: Number(attempts.value || 3), requirements: { gpus: Number(gpus.value || 0), memory_mb: Number(memory.value || 0), tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) } };
    if (name.value.trim()) b.name = name.value.trim();
    if (timeout.value) b.timeout_secs = Number(timeout.value);
    return b;
  }

  const studyName = () => (kind.value === "experiment" ? study.value.trim() : "");

  /** A study's request, as `gaia submit --study` sends it; throws on a params field it cannot read. */
  function studyRequest(dryRun, confirmLarge) {
    const p = readParams(params.value);
    const template = Object.assign(base("experiment"), { max_evals: Number(maxEvals.value) || undefined });
    if (Object.keys(p.fixed).length) template.params = p.fixed;
    return {
      name: studyName(),
      template,
      sweep: { methods: method.value, envs: env.value, seeds: seeds.value, params: p.lines },
      again: again.checked,
      confirm_large: confirmLarge,
      dry_run: dryRun,
      ...(sampler.value !== "grid" ? { sampler: sampler.value } : {}),
      ...(samples.value ? { samples: Number(samples.value) } : {}),
      ...(sampleSeed.value ? { sample_seed: Number(sampleSeed.value) } : {}),
      ...(parallel.value ? { parallel: Number(parallel.value) } : {}),
      ...(earlyStop.value.trim() ? { early_stop: earlyStop.value.trim() } : {}),
    };
  }

  /** The one plain job; throws when the fields ask for a sweep without a study name. */
  function plainSpec() {
    const k = kind.value;
    const spec = base(k);
    if (k === "experiment") {
      for (const [what, field] of [["method", method], ["environment", env]]) {
        const v = field.value.trim();
        if (v.includes(",")) throw new Error(`${what} "${v}" lists several values: a sweep needs a study name`);
      }
      if (sampler.value !== "grid" || samples.value || earlyStop.value.trim()) throw new Error("a sampler and early stopping shape a study: give a study name");
      const p = readParams(params.value);
      const values = p.lines.length ? Object.fromEntries(p.lines.map(paramOf)) : p.fixed;
      Object.assign(spec, { method: method.value.trim(), env: env.value.trim() || undefined, max_evals: Number(maxEvals.value) || undefined });
      if (Object.keys(values).length) spec.params = values;
      const seed = plainSeed(seeds.value);
      if (seed !== undefined) spec.seed = seed;
      return spec;
    }
    if (k === "command") return Object.assign(spec, { argv: argv.value.trim().split(/\s+/).filter(Boolean) });
    return Object.assign(spec, { input: input.value });
  }

  function say(text, cls) {
    preview.textContent = text;
    preview.className = cls;
  }

  // The preview of a study asks the server (a dry run); only the newest answer is shown.
  let asked = 0;
  async function previewStudy() {
    const n = ++asked;
    let req;
    try {
      req = studyRequest(true, true);
    } catch (e) {
      return say(e.message, "error");
    }
    try {
      const r = await api("/api/v1/studies", { body: req });
      if (n !== asked) return;
      const after = r.extended ? `it will hold ${count(r.total_jobs)}` : "a new study";
      const large = r.planned > CONFIRM_STUDY_JOBS ? ` More than ${count(CONFIRM_STUDY_JOBS)}: you will be asked to confirm.` : "";
      say(`Will submit ${plural(r.planned, "job")} to study ${r.study} (${after}).${large}`, "muted");
    } catch (e) {
      if (n !== asked) return;
      say(refusal(e), "error");
    }
  }
  const previewSoon = debounce(previewStudy, 300);

  function update() {
    const k = kind.value;
    for (const x of expOnly) x.hidden = k !== "experiment";
    for (const x of cmdOnly) x.hidden = k !== "command";
    for (const x of inOnly) x.hidden = k === "experiment" || k === "command";
    againLabel.hidden = !studyName();
    if (studyName() && !maySubmit()) {
      // The preview is a dry run of the submission, which only a token that may submit makes.
      previewSoon.cancel();
      return say("Previewing and submitting a study needs an admin token or a submit token.", "muted");
    }
    if (studyName()) {
      asked++; // an answer still on its way describes an older form
      say(`Checking study ${studyName()}…`, "muted");
      previewSoon();
      return;
    }
    previewSoon.cancel();
    asked++;
    try {
      plainSpec();
      say("Will submit 1 job.", "muted");
    } catch (e) {
      say(e.message, "error");
    }
  }

  const jobLinks = (ids) => ids.slice(0, 50).flatMap((id) => [h("a", { href: `#/jobs/${id}`, text: `#${id}` }), " "]);

  async function submitStudy() {
    let req;
    try {
      req = studyRequest(false, false);
    } catch (x) {
      return say(x.message, "error");
    }
    try {
      const check = await api("/api/v1/studies", { body: Object.assign({}, req, { dry_run: true, confirm_large: true }) });
      if (check.planned > CONFIRM_STUDY_JOBS) {
        if (!confirm(`Study ${check.study} expands to ${count(check.planned)} jobs. Submit them all?`)) return;
        req.confirm_large = true;
      }
      const r = await api("/api/v1/studies", { body: req });
      const ids = r.jobs.map(([id]) => id);
      const q = encodeURIComponent(r.study);
      const added = r.extended ? ` (it holds ${count(r.total_jobs)} now)` : "";
      put(
        result,
        h(
          "p",
          { class: "ok" },
          `Submitted ${plural(ids.length, "job")} to study ${r.study}${added}: `,
          ...jobLinks(ids),
          h("a", { href: `#/jobs?study=${q}`, text: "the study's jobs" }),
          " · ",
          h("a", { href: `#/charts?study=${q}`, text: "its charts" }),
        ),
      );
      toast(`Study ${r.study}: ${plural(ids.length, "job")} submitted`);
      again.checked = false;
      update();
    } catch (x) {
      put(result, h("p", { class: "error", text: `Refused: ${refusal(x)}` }));
    }
  }

  async function submitPlain() {
    let spec;
    try {
      spec = plainSpec();
    } catch (x) {
      return say(x.message, "error");
    }
    try {
      const id = (await api("/api/v1/jobs", { body: spec })).id;
      put(result, h("p", { class: "ok" }, "Submitted 1 job: ", ...jobLinks([id])));
      toast("Submitted 1 job");
    } catch (x) {
      put(result, h("p", { class: "error", text: `Refused: ${x.message}` }));
    }
  }

  form.addEventListener("input", update);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!maySubmit()) return;
    if (studyName()) submitStudy();
    else submitPlain();
  });
  // Suggestions: the methods the shipped experiments know (from the server), then those used.
  Promise.all([api("/api/v1/status"), api("/api/v1/summary")])
    .then(([st, s]) => {
      const ms = new Set([...(st.methods || []), ...s.groups.map((g) => g.method)]);
      const es = new Set(["CartPole-v1", "sphere", "rastrigin", "rosenbrock", ...s.groups.map((g) => g.env)]);
      put(methods, ...[...ms].map((m) => h("option", { value: m })));
      put(envs, ...[...es].map((m) => h("option", { value: m })));
    })
    .catch(() => {});
  update();
  return {
    el: form,
    needs: {},
    destroy() {
      previewSoon.cancel();
      asked++;
    },
  };
}
