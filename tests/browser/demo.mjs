// What a newcomer sees after `gaia demo` says its study has finished: opens the one link the demo
// printed (the token in the URL fragment), checks the token left the address bar and the browser
// is logged in, and keeps screenshots of the overview, the study's curves and one job's page in
// $ARTIFACTS (default test-artifacts/demo).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { until } from "./xss.mjs";
import { env } from "./env.mjs";

const LINK = env("LINK");
const JOB = env("JOB");
const ART = env("ARTIFACTS", path.resolve("../../test-artifacts/demo"));
fs.mkdirSync(ART, { recursive: true });

const userData = fs.mkdtempSync(path.join(os.tmpdir(), "gaia-demo-"));
const ctx = await chromium.launchPersistentContext(userData, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
  });
  await page.goto(LINK);
  // Logged in by the link, and the token is gone from the address bar (and so from history).
  await until(page, "the overview", () => !!document.querySelector("#queue, .overview, main table"));
  assert.ok(!page.url().includes("token="), `the token stayed in the address bar: ${page.url()}`);
  await until(page, "the demo's jobs in the overview", () => /demo|cma_es/.test(document.body.textContent));
  await page.waitForTimeout(500);
  await page.screenshot({ path: path.join(ART, "overview.png"), fullPage: true });
  const base = LINK.split("#")[0];
  await page.goto(`${base}#/charts?study=demo`);
  await until(page, "the study's curves", () => document.querySelectorAll("svg path, canvas").length > 0);
  await page.waitForTimeout(1000);
  await page.screenshot({ path: path.join(ART, "study-charts.png"), fullPage: true });
  await page.goto(`${base}#/jobs/${JOB}`);
  await until(page, "a job's page", (id) => document.body.textContent.includes(`#${id}`) || document.body.textContent.includes(`job ${id}`), JOB);
  await page.waitForTimeout(1000);
  await page.screenshot({ path: path.join(ART, "job.png"), fullPage: true });
  assert.deepEqual(problems, [], problems.join("\n"));
  console.log(`[demo] screenshots in ${ART}`);
} finally {
  await ctx.close();
  fs.rmSync(userData, { recursive: true, force: true });
}
