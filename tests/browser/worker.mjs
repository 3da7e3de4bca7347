// A worker's page in headless Chromium (playwright-core, Debian's chromium): its CPU and RAM
// chart and, for a worker that reports GPUs, a utilisation and a memory chart per GPU, over
// the hour, the day and the week; the Pause and Resume buttons act on the real server; a
// quarantined worker shows its state and reason. Run by tests/dashboard.rs
// (`dashboard_worker_page_in_headless_chromium`):
//
//   SERVER=http://127.0.0.1:7434 TOKEN=... WORKER=w-… GPU_WORKER=w-… node tests/browser/worker.mjs
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { until, waitForText } from "./xss.mjs";
import { env } from "./env.mjs";

const SERVER = env("SERVER");
const TOKEN = env("TOKEN");
const WORKER = env("WORKER");
const GPU_WORKER = env("GPU_WORKER");
const ART = env("ARTIFACTS", path.resolve("../../test-artifacts/dashboard"));
fs.mkdirSync(ART, { recursive: true });

const userData = fs.mkdtempSync(path.join(os.tmpdir(), "gaia-chromium-"));
const ctx = await chromium.launchPersistentContext(userData, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
const log = (m) => console.log(`[worker.mjs] ${m}`);
async function apiGet(p) {
  const r = await fetch(SERVER + p, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, `GET ${p}: ${r.status}`);
  return r.json();
}
const page = await ctx.newPage();
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
page.on("response", (r) => {
  if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
});
page.on("dialog", (d) => d.accept());
let step = "login";
try {
  await page.goto(`${SERVER}/#token=${TOKEN}`);
  await page.waitForSelector("#workers .wcard");

  // From the overview's card to the worker's page.
  step = "overview card";
  await page.click(`.wcard[data-worker="${WORKER}"] a.wname`);
  await page.waitForSelector("#worker-state");
  assert.match(page.url(), new RegExp(`#/workers/${WORKER}$`));

  step = "cpu chart";
  const points = (sel) => page.$eval(sel, (c) => Number(c.dataset.points || 0));
  await until(page, "the CPU chart to have points", () => Number(document.querySelector(".workerpage canvas")?.dataset.points || 0) > 0);
  for (const span of ["day", "week", "hour"]) {
    await page.click(`button[data-span=${span}]`);
    await until(page, `the ${span} button to be pressed`, (s) => document.querySelector(`button[data-span=${s}]`).getAttribute("aria-pressed") === "true", span);
    await until(page, `${span}: the CPU chart to have points`, () => Number(document.querySelector(".workerpage canvas")?.dataset.points || 0) > 0);
  }
  assert.ok((await points(".workerpage canvas")) > 0);
  await page.screenshot({ path: path.join(ART, "worker-page.png"), fullPage: true });

  // Pause from the page: the server holds the worker; Resume lifts it.
  step = "pause";
  await page.click("#worker-pause");
  await waitForText(page, "#worker-state", "paused");
  await waitForText(page, "#worker-hold", ["paused by admin", "paused from the dashboard"]);
  let w = await apiGet(`/api/v1/workers/${WORKER}`);
  assert.equal(w.state, "paused");
  step = "resume";
  await page.click("#worker-resume");
  await until(page, "the hold to go", () => !document.querySelector("#worker-hold"));
  w = await apiGet(`/api/v1/workers/${WORKER}`);
  assert.equal(w.hold, undefined);
  step = "drain";
  await page.click("#worker-drain");
  await waitForText(page, "#worker-hold", "drained from the dashboard");
  w = await apiGet(`/api/v1/workers/${WORKER}`);
  assert.equal(w.hold.kind, "draining");
  await page.click("#worker-resume");
  await until(page, "the hold to go", () => !document.querySelector("#worker-hold"));

  // The GPU worker: quarantined with its reason, and a utilisation and memory chart per GPU.
  step = "gpu worker";
  await page.goto(`${SERVER}/#/workers/${GPU_WORKER}`);
  await waitForText(page, "#worker-state", "quarantined");
  await waitForText(page, "#worker-hold", ["quarantined by server", "could not start"]);
  await until(page, "four GPU charts with points", () => {
    const cs = [...document.querySelectorAll(".gpucharts canvas")];
    return cs.length === 4 && cs.every((c) => Number(c.dataset.points || 0) > 0);
  });
  const titles = await page.$$eval(".gpucharts .chart-title", (ts) => ts.map((t) => t.textContent));
  assert.ok(titles.some((t) => t.includes("GPU1") && t.includes("utilisation")), titles.join(" | "));
  assert.ok(titles.some((t) => t.includes("GPU0") && t.includes("memory")), titles.join(" | "));
  await page.screenshot({ path: path.join(ART, "worker-page-gpu-quarantined.png"), fullPage: true });
  // The overview's card says it too.
  await page.goto(`${SERVER}/#/`);
  await waitForText(page, `.wcard[data-worker="${GPU_WORKER}"]`, ["quarantined", "could not start"]);
  assert.deepEqual(problems, []);
  log("ok");
} catch (e) {
  await page.screenshot({ path: path.join(ART, `worker-failed-${step}.png`), fullPage: true }).catch(() => {});
  console.error(`[worker.mjs] step ${step} failed: ${e.stack || e}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await ctx.close();
  fs.rmSync(userData, { recursive: true, force: true });
}
