// The dashboard's studies list, a study's page (its cells with state, progress and ETA) and its
// Compare view (the server's numbers and figures) in a real headless Chromium (Debian's chromium,
// driven by playwright-core) against a real `gaia serve` holding a real study of the real
// experiments. Run by tests/compare.rs; by hand:
//
//   SERVER=http://127.0.0.1:7434 TOKEN=... STUDY=cc JOBS=30 node tests/browser/compare.mjs
//
// It also adds a seed through the page's control (the study route, as `gaia study extend`) and
// checks the server got exactly the new jobs. Screenshots land in $ARTIFACTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { env } from "./env.mjs";

const SERVER = env("SERVER");
const TOKEN = env("TOKEN");
const STUDY = env("STUDY");
const JOBS = Number(env("JOBS"));
const ART = env("ARTIFACTS", path.resolve("../../test-artifacts/compare"));
fs.mkdirSync(ART, { recursive: true });

const t0 = Date.now();
const log = (m) => console.log(`[compare ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const problems = [];
const userData = fs.mkdtempSync(path.join(os.tmpdir(), "gaia-chromium-"));
const ctx = await chromium.launchPersistentContext(userData, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await ctx.newPage();
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
page.on("response", (r) => {
  if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
});
page.on("dialog", (d) => d.accept());
async function shot(name) {
  const file = path.join(ART, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}
async function apiGet(p) {
  const r = await fetch(SERVER + p, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, `GET ${p}`);
  return r.json();
}

let step = "login";
try {
  await page.goto(`${SERVER}/#token=${encodeURIComponent(TOKEN)}`);
  await page.waitForSelector("#nav a[href='#/studies']");

  step = "studies list";
  await page.click("#nav a[href='#/studies']");
  const row = page.locator(`#studies tr[data-study="${STUDY}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(`${JOBS}`), "the study's job count");
  assert.match(await row.textContent(), /100%/);
  await shot("01-studies");

  step = "study page";
  await row.locator("a").click();
  await page.waitForSelector("#study-cells td.cell");
  const cells = await page.locator("#study-cells td.cell").count();
  assert.equal(cells, 6, "3 methods × 2 environments");
  assert.match(await page.locator("#study-cells").textContent(), /5 \/ 5 done/);
  assert.match(await page.locator("#study-summary").textContent(), /done/);

  step = "compare view";
  await page.waitForSelector("#compare-table tbody tr");
  const rows = await page.locator("#compare-table tbody tr").count();
  assert.equal(rows, 3);
  // Every number is the server's: the table shows what GET .../compare answered.
  const c = await apiGet(`/api/v1/studies/${STUDY}/compare`);
  const first = c.methods[0];
  const text = await page.locator("#compare-table").textContent();
  assert.ok(text.includes(first.method), text);
  assert.match(await page.locator("#compare-table tbody tr").first().textContent(), /\[/, "intervals");
  await page.waitForSelector("#compare-improvement");
  // The figures arrive as images the server drew.
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll("img.compare-fig")];
    return imgs.length === 5 && imgs.every((i) => i.complete && i.naturalWidth === 1200);
  }, null, { timeout: 120_000 });
  await shot("02-study-compare");

  step = "per environment and target";
  await page.check("#compare-by-env");
  await page.waitForFunction(() => document.querySelectorAll("#compare-body h3").length >= 4);
  await page.check("#compare-target");
  await page.waitForSelector("#compare-target-table");
  assert.match(await page.locator("#compare-target-table").textContent(), /success|\//);
  assert.match(await page.locator("#compare-target-note").textContent(), /Wilson score interval/);
  await page.waitForFunction(() => [...document.querySelectorAll("img.compare-fig")].every((i) => i.complete && i.naturalWidth === 1200), null, { timeout: 120_000 });
  await shot("03-compare-by-env-target");

  step = "on a phone";
  // The comparison's tables scroll inside their panel; the page itself never gets wider than
  // the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= 392, `the study page with its comparison is ${wide}px wide on a 390px screen`);
  await shot("03b-compare-phone");
  await page.setViewportSize({ width: 1400, height: 900 });

  step = "add a seed";
  await page.fill("#extend-seeds", "+1");
  await page.click("#extend-go");
  await page.waitForFunction(() => /added 6 jobs/.test(document.querySelector("#more-note").textContent), null, { timeout: 30_000 });
  const after = await apiGet(`/api/v1/studies/${STUDY}`);
  assert.equal(after.jobs.length, JOBS + 6);
  const seeds = new Set(after.jobs.slice(JOBS).map((j) => j.seed));
  assert.deepEqual([...seeds], [6], "exactly the next seed");
  // The page follows: the new jobs are queued, and the comparison says it is provisional.
  await page.waitForSelector("#compare-provisional:not([hidden])", { timeout: 30_000 });
  await page.waitForFunction(() => /queued/.test(document.querySelector("#study-cells").textContent), null, { timeout: 30_000 });
  await shot("04-extended");

  assert.deepEqual(problems, [], problems.join("\n"));
  log("ok");
} catch (e) {
  console.error(`[compare] failed at step "${step}": ${e.stack || e}`);
  try {
    await shot(`failed-${step.replace(/\W+/g, "-")}`);
  } catch {
    /* no page to shoot */
  }
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await ctx.close();
  fs.rmSync(userData, { recursive: true, force: true });
}
