// A smoke test of the GAIA dashboard in headless Firefox (Debian's firefox-esr, driven over
// WebDriver BiDi by puppeteer-core; no browser download, no geckodriver). Run by
// tests/dashboard.rs against a real `gaia serve` with a real `gaia work`; by hand:
//
//   SERVER=http://127.0.0.1:7434 TOKEN=... CURVE_JOB=1 XSS_JOB=2 WORKER_NAME=lab-ff-1 \
//   node tests/browser/firefox.mjs
//
// At 1280×800 and at 390×844: log in, the overview with the worker card, a finished job's page
// with its curve drawn on the canvas and its logs (lines that are XSS payloads, as text), the
// XSS job's name inert. Screenshots land in $ARTIFACTS as firefox-*.png, beside Chromium's.
import puppeteer from "puppeteer-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { XSS_NAME, IMG, SCRIPT, textOf, until, waitForText, assertInert } from "./xss.mjs";
import { env } from "./env.mjs";

const SERVER = env("SERVER");
const TOKEN = env("TOKEN");
const CURVE = Number(env("CURVE_JOB"));
const XSS = Number(env("XSS_JOB"));
const WORKER = env("WORKER_NAME");
const ART = env("ARTIFACTS", path.resolve("../../test-artifacts/dashboard"));
fs.mkdirSync(ART, { recursive: true });
for (const f of fs.readdirSync(ART)) if (/^firefox-.*\.png$/.test(f)) fs.rmSync(path.join(ART, f));

const t0 = Date.now();
const log = (msg) => console.log(`[firefox ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
let step = "launch";

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: env("FIREFOX", "/usr/bin/firefox-esr"),
  headless: true,
  // puppeteer's own Firefox preferences already turn off updates, telemetry and the like; the
  // lab server may have no internet, so nothing else may be fetched either.
  extraPrefsFirefox: {
    "network.captive-portal-service.enabled": false,
    "network.connectivity-service.enabled": false,
    "browser.safebrowsing.update.enabled": false,
  },
  protocolTimeout: 60_000,
});
log(`launched ${await browser.version()}`);

const problems = [];
const dialogs = [];
const foreign = [];
const page = await browser.newPage();
page.on("pageerror", (e) => problems.push(`page error: ${e.message || e}`));
page.on("console", (m) => {
  if (m.type() === "error") problems.push(`console error: ${m.text()}`);
});
page.on("dialog", async (d) => {
  dialogs.push(`${d.type()}: ${d.message()}`);
  await d.dismiss();
});
page.on("request", (r) => {
  const u = r.url();
  if (!u.startsWith(SERVER) && !u.startsWith("data:") && !u.startsWith("blob:") && !u.startsWith("about:")) foreign.push(u);
});
page.on("response", (r) => {
  if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
});

async function shot(name) {
  const file = path.join(ART, `firefox-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

/** Pixels of the canvas that are clearly coloured (the curves; axes, grid and text are grey). */
function colouredPixels(sel) {
  return page.evaluate((s) => {
    const c = document.querySelector(s);
    if (!c || !c.width || !c.height) return 0;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  }, sel);
}

const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);

async function overview(tag, width) {
  await page.goto(`${SERVER}/#/`);
  await until(page, `the worker card of ${WORKER}`, (w) => [...document.querySelectorAll(".wcard")].find((c) => c.textContent.includes(w))?.querySelector(".wstate")?.textContent, WORKER);
  const card = await page.evaluate((w) => [...document.querySelectorAll(".wcard")].find((c) => c.textContent.includes(w)).textContent, WORKER);
  assert.match(card, /idle|busy/, card);
  assert.match(card, /CPU/, card);
  await until(page, "the best table", () => document.querySelectorAll("#best tbody tr").length);
  await until(page, "the activity log", () => document.querySelectorAll("#activity li").length);
  await until(page, "the live connection", () => !!document.querySelector("#conn.live"));
  assert.ok((await textOf(page, ".tiles")).includes("succeeded"));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const w = await pageWidth();
  assert.ok(w <= width + 2, `the overview is ${w}px wide on a ${width}px screen`);
  await assertInert(page, `the overview (${tag})`);
  await shot(`${tag}-overview`);
}

async function jobPage(tag, width) {
  await page.goto(`${SERVER}/#/jobs/${CURVE}`);
  await waitForText(page, "#job-title", "firefox curve");
  const canvas = ".jobpage .chart canvas";
  await until(page, "the curve's points", (s) => Number(document.querySelector(s)?.dataset.points || 0), canvas);
  await until(page, "the curve drawn on the canvas", (s) => !!document.querySelector(s)?.width, canvas);
  let coloured = 0;
  const deadline = Date.now() + 10_000;
  while ((coloured = await colouredPixels(canvas)) < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(coloured >= 200, `only ${coloured} coloured pixels on the curve's canvas`);
  const points = await page.evaluate((s) => Number(document.querySelector(s).dataset.points), canvas);
  log(`${tag}: curve of ${points} points, ${coloured} coloured pixels`);
  // Its logs, with the payload lines it printed shown as text.
  await waitForText(page, "#logs .lx", [`: ${IMG}`, `: ${SCRIPT}`, "starting cma_es"]);
  assert.ok((await textOf(page, "#logs .lv-warning")).includes("WARNING"), "warnings are highlighted");
  const w = await pageWidth();
  assert.ok(w <= width + 2, `the job page is ${w}px wide on a ${width}px screen`);
  await assertInert(page, `the job page (${tag})`);
  await shot(`${tag}-job`);

  await page.goto(`${SERVER}/#/jobs/${XSS}`);
  await until(page, "the XSS job's name as its title", (n) => document.querySelector("#job-title")?.textContent === n, XSS_NAME);
  await waitForText(page, ".jobhead .errorbox", [`about to fail: ${IMG}`, `about to fail: ${SCRIPT}`]);
  await until(page, "the error lines", () => document.querySelectorAll("#logs .lv-error").length);
  await assertInert(page, `the XSS job's page (${tag})`);
  await shot(`${tag}-xss-job`);
}

try {
  step = "login";
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(`${SERVER}/`);
  await page.waitForSelector("#login");
  await shot("01-login");
  await page.type("#token", TOKEN);
  await page.click("#login button[type=submit]");
  await until(page, "the logged-in scope", () => document.querySelector(".scope")?.textContent === "admin");

  step = "overview";
  await overview("02-desktop", 1280);
  step = "remembered login";
  await page.reload();
  await until(page, "the overview after a reload", () => !!document.querySelector(".wcard") && !document.querySelector("#login"));

  step = "job page";
  await jobPage("03-desktop", 1280);

  step = "jobs list";
  await page.goto(`${SERVER}/#/jobs`);
  await until(page, "the XSS job's row", (n) => document.querySelector(`#jobs tr[data-job="${n[0]}"] td.jname`)?.textContent.trim() === n[1], [XSS, XSS_NAME]);
  await assertInert(page, "the jobs list");
  await shot("04-desktop-jobs");

  step = "phone";
  await page.setViewport({ width: 390, height: 844 });
  await overview("05-phone", 390);
  await jobPage("06-phone", 390);

  step = "logout";
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(`${SERVER}/#/`);
  await page.waitForSelector("#logout");
  await page.click("#logout");
  await page.waitForSelector("#login");
  assert.equal(await page.evaluate(() => localStorage.getItem("gaia-token")), null);

  step = "checks";
  assert.deepEqual(dialogs, [], "unexpected dialogs (an alert means XSS)");
  assert.deepEqual(foreign, [], "requests to other origins");
  assert.deepEqual(problems, [], "errors in the page");
  log("all checks passed");
} catch (e) {
  console.error(`[firefox] FAILED at step "${step}": ${e.stack || e}`);
  if (problems.length) console.error(`[firefox] page problems:\n  ${problems.join("\n  ")}`);
  try {
    await shot(`failed-${step.replace(/\W+/g, "-")}`);
  } catch {
    /* the page may be gone */
  }
  await browser.close();
  process.exit(1);
}
await browser.close();
