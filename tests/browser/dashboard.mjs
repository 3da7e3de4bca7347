// The GAIA dashboard in a real headless Chromium (Debian's chromium package, driven by
// playwright-core; no browser download). Run by tests/dashboard.rs against a real `gaia serve`
// with a real `gaia work`; it can also be run by hand:
//
//   SERVER=http://127.0.0.1:7434 TOKEN=... READ_TOKEN=... LONG_JOB=1 XSS_JOB=14 \
//   XSS_INPUT_JOB=15 DONE_JOBS=2,3,4 WORKER_NAME=lab-gpu-1 PROBE_WORKER=xss-probe \
//   node tests/browser/dashboard.mjs
//
// XSS payloads (xss.mjs) are planted by the Rust side in the XSS job's name and error, the long
// job's params (a key and a value), status and live log lines, a built-in job's input (so the
// activity log's event message and the jobs list), and the hardware a probe worker reports; each
// page checks they are shown literally and that nothing ran.
//
// Beyond the pages themselves: the submit form submits a plain job and a study (through the
// study route: its record, the dry-run preview, the refusal of a repeated definition), a link to
// the study's charts shows its curves (also reloaded), the job page writes sizes and counts as
// format.js says, and a login link (#token=…) logs in and leaves no token in the address bar.
//
// Screenshots of every page land in $ARTIFACTS (default test-artifacts/dashboard); the Firefox
// smoke test (firefox.mjs) puts its own, named firefox-*, beside them.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { XSS_NAME, IMG, SCRIPT, textOf, until, waitForText, assertInert } from "./xss.mjs";
import { env } from "./env.mjs";

const SERVER = env("SERVER");
const TOKEN = env("TOKEN");
const READ_TOKEN = env("READ_TOKEN");
const LONG = Number(env("LONG_JOB"));
const XSS = Number(env("XSS_JOB"));
const XSS_INPUT = Number(env("XSS_INPUT_JOB"));
const PROBE = env("PROBE_WORKER");
const DONE = env("DONE_JOBS").split(",").map(Number);
const WORKER = env("WORKER_NAME");
const ART = env("ARTIFACTS", path.resolve("../../test-artifacts/dashboard"));
// The study the submit form creates.
const STUDY = "form-study";
fs.mkdirSync(ART, { recursive: true });
// Screenshots and downloads of an earlier run would only mislead (Firefox's are its own).
for (const f of fs.readdirSync(ART)) if (/\.(png|csv)$/.test(f) && !f.startsWith("firefox-")) fs.rmSync(path.join(ART, f));

const userData = fs.mkdtempSync(path.join(os.tmpdir(), "gaia-chromium-"));
const ctx = await chromium.launchPersistentContext(userData, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  viewport: { width: 1280, height: 800 },
  acceptDownloads: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const problems = [];
let expect401 = false;
// The submit form's study preview and a repeated submission answer 400 / 409 on purpose.
let expectStudyRefusals = false;
const dialogs = [];
const foreign = [];
function watch(page) {
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // Failed requests are judged by the response handler below, which knows the URL.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
  });
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (r.status() < 400) return;
    if (r.status() === 404 && /^\/api\/v1\/jobs\/\d+\/export\./.test(u.pathname)) {
      // A server without the export routes: the dashboard builds the file itself.
      log(`note: ${u.pathname} answered 404; the dashboard's own export was used`);
      return;
    }
    if (r.status() === 401 && expect401) return;
    if ((r.status() === 400 || r.status() === 409) && u.pathname === "/api/v1/studies" && expectStudyRefusals) {
      log(`note: the study route answered ${r.status()}, as the test meant`);
      return;
    }
    problems.push(`HTTP ${r.status()} for ${u.pathname}${u.search.replace(/token=[^&]+/, "token=…")}`);
  });
  page.on("dialog", async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    // Our own confirm() before a cancel is expected; anything else (an alert!) is not.
    if (d.type() === "confirm" && d.message().startsWith("Cancel job")) await d.accept();
    else await d.dismiss();
  });
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(SERVER) && !u.startsWith("data:") && !u.startsWith("blob:")) foreign.push(u);
  });
}

let step = "start";
const t0 = Date.now();
function log(msg) {
  console.log(`[dashboard ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}
async function shot(page, name) {
  const file = path.join(ART, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}
const pointsOf = (page, sel) => page.$eval(sel, (c) => Number(c.dataset.points || 0));
/** GETs an API path with the admin token, from node (not the page). */
async function apiGet(p) {
  const r = await fetch(SERVER + p, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, `GET ${p}: ${r.status}`);
  return r.json();
}

const page = await ctx.newPage();
watch(page);
try {
  // ---- log in ---------------------------------------------------------------------------------
  step = "login";
  await page.goto(SERVER + "/");
  await page.waitForSelector("#login");
  await shot(page, "01-login");
  expect401 = true;
  await page.fill("#token", "wrong-token-123");
  await page.click("#login button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.includes("does not know"));
  expect401 = false;
  await page.fill("#token", TOKEN);
  await page.click("#login button[type=submit]");

  // ---- overview: the worker card, the queue, the best table, the activity log ----------------
  step = "overview";
  const card = page.locator(".wcard", { hasText: WORKER });
  await card.waitFor();
  assert.match(await card.locator(".wstate").textContent(), /busy|idle/);
  assert.match(await card.textContent(), /CPU/);
  await page.locator(`#queue tr[data-job="${LONG}"]`).waitFor();
  await page.locator("#best td", { hasText: "random_search" }).first().waitFor();
  await page.locator("#activity li").first().waitFor();
  assert.equal(await page.locator(".scope").textContent(), "admin");
  await page.waitForSelector("#conn.live");
  const tiles = await page.locator(".tiles").textContent();
  assert.match(tiles, /succeeded/);
  // The queue fits its panel at this width: the job's name gives way, the last column (ETA and
  // a running job's cancel button) is not cut off behind a scroll bar.
  const fit = await page.$eval("#queue", (t) => ({ table: t.scrollWidth, box: t.parentElement.clientWidth }));
  assert.ok(fit.table <= fit.box + 1, `the queue is ${fit.table}px wide in its ${fit.box}px panel`);
  // The probe worker's reported hardware (GPU name shown, hostname and CPU model in the tooltip)
  // and the built-in job's input in the activity log's event message: all text.
  step = "xss: overview";
  const probe = page.locator(".wcard", { hasText: PROBE });
  await probe.waitFor();
  assert.ok((await probe.textContent()).includes(IMG), `the probe's GPU name as text: ${await probe.textContent()}`);
  const hwTitle = await probe.locator(".whw").getAttribute("title");
  assert.ok(hwTitle.includes(IMG) && hwTitle.includes(SCRIPT), `hostname and CPU model in the tooltip: ${hwTitle}`);
  await waitForText(page, "#activity", `reverse "${IMG}"`);
  await assertInert(page, "the overview");
  await shot(page, "02-overview");

  // The token is remembered: a reload logs in by itself.
  step = "remembered login";
  await page.reload();
  await page.locator(".wcard", { hasText: WORKER }).waitFor();
  assert.equal(await page.locator("#login").count(), 0);

  // ---- the XSS job's name is shown as text ----------------------------------------------------
  step = "xss";
  await page.goto(`${SERVER}/#/jobs`);
  const xssRow = page.locator(`#jobs tr[data-job="${XSS}"]`);
  await xssRow.waitFor();
  assert.equal((await xssRow.locator("td.jname").textContent()).trim(), XSS_NAME);
  assert.equal((await page.locator(`#jobs tr[data-job="${XSS_INPUT}"] td.jname`).textContent()).trim(), `reverse "${IMG}"`);
  await assertInert(page, "the jobs list");
  await shot(page, "03-jobs");
  // Every job's summary as CSV, built from the paginated list.
  const sumDl = page.waitForEvent("download");
  await page.click("#export-jobs-csv");
  const sumPath = path.join(ART, "jobs.csv");
  await (await sumDl).saveAs(sumPath);
  const sumCsv = fs.readFileSync(sumPath, "utf8").trim().split("\n");
  assert.match(sumCsv[0], /^id,name,kind,method,env/);
  // (A failed job's error spans lines inside its quoted field: count the records' first lines.)
  assert.equal(sumCsv.filter((l) => /^\d+,/.test(l)).length, 3 + DONE.length, "one record per job");
  assert.ok(sumCsv.some((l) => l.startsWith(`${XSS},${XSS_NAME},`)), "the XSS job's line");
  await page.goto(`${SERVER}/#/jobs/${XSS}`);
  await page.waitForFunction((n) => document.querySelector("#job-title")?.textContent === n, XSS_NAME);
  await page.locator("#logs .lv-error").first().waitFor();
  assert.equal(await page.locator('img[src="x"]').count(), 0, "the job name became an <img>");
  // What the experiment printed to stderr before failing: in the error box and the logs.
  await waitForText(page, ".jobhead .errorbox", [`about to fail: ${IMG}`, `about to fail: ${SCRIPT}`]);
  await waitForText(page, "#logs .lx", [`about to fail: ${IMG}`, `about to fail: ${SCRIPT}`]);
  await assertInert(page, "the XSS job's page");
  await shot(page, "04-xss-job");
  // A built-in job whose input is a payload: shown in its details, and its result.
  await page.goto(`${SERVER}/#/jobs/${XSS_INPUT}`);
  await waitForText(page, "#job-title", `reverse "${IMG}"`);
  await waitForText(page, ".jobpage .kv", IMG);
  await assertInert(page, "the built-in job's page");

  // ---- a running job's page: its curve grows live; zoom fetches finer data ---------------------
  step = "running job";
  await page.goto(`${SERVER}/#/jobs/${LONG}`);
  await page.locator("#job-title", { hasText: "long cma_es run" }).waitFor();
  const curve = ".jobpage .chart canvas";
  await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.points || 0) > 0, curve);
  const before = await pointsOf(page, curve);
  await page.waitForFunction(([s, n]) => Number(document.querySelector(s).dataset.points) > n + 10, [curve, before], { timeout: 30_000 });
  const after = await pointsOf(page, curve);
  log(`curve grew live from ${before} to ${after} points`);
  await page.locator("#logs .ll").first().waitFor();
  step = "xss: running job";
  // Params: a key and a value that are payloads, in the params block and the raw spec.
  await waitForText(page, ".jobpage pre.json", [`"${IMG}": "${SCRIPT}"`]);
  assert.equal((await textOf(page, ".jobpage details pre.json")).includes(IMG), true, "the raw spec shows the key");
  // The status the experiment reported.
  await waitForText(page, ".jobhead", `status: ${IMG}`);
  // Log lines printed while the page is open arrive over the stream and are shown as text.
  const echoes = () => page.evaluate((n) => [...document.querySelectorAll("#logs .ll .lx")].filter((e) => e.textContent.includes(n)).length, `: ${SCRIPT}`);
  const echoed = await echoes();
  assert.ok(echoed > 0, "the echoed payload lines already printed");
  await until(page, "more echoed payload lines, live", ([n, before]) => [...document.querySelectorAll("#logs .ll .lx")].filter((e) => e.textContent.includes(n)).length > before, [`: ${SCRIPT}`, echoed], 30_000);
  await waitForText(page, "#logs .lx", [`: ${IMG}`, `: ${SCRIPT}`]);
  log(`echoed payload lines: ${echoed} when loaded, ${await echoes()} after the live tail`);
  await assertInert(page, "the running job's page");
  await shot(page, "05-job-running");

  step = "zoom";
  const box = await page.locator(curve).first().boundingBox();
  const zoomReq = page.waitForRequest((r) => r.url().includes(`/api/v1/jobs/${LONG}/rows?`) && r.url().includes("from="));
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  const zr = await zoomReq;
  log(`zoom fetched ${new URL(zr.url()).search}`);
  const reset = page.locator(".jobpage .chart").first().locator("button", { hasText: "Reset zoom" });
  await reset.waitFor();
  await reset.click();
  await reset.waitFor({ state: "hidden" });

  // ---- download the job's rows as CSV ----------------------------------------------------------
  step = "csv";
  const dl = page.waitForEvent("download");
  await page.click('button[data-export="csv"]');
  const download = await dl;
  const csvPath = path.join(ART, `job-${LONG}.csv`);
  await download.saveAs(csvPath);
  const csv = fs.readFileSync(csvPath, "utf8").trim().split("\n");
  assert.match(csv[0], /best/, `CSV header: ${csv[0]}`);
  assert.ok(csv.length > 5, `CSV has ${csv.length} lines`);
  log(`downloaded ${download.suggestedFilename()}: ${csv.length} lines`);

  // ---- cancel it ----------------------------------------------------------------------------
  step = "cancel";
  await page.click("#cancel-job");
  await page.locator(".jobtitle .badge.st-cancelled").waitFor({ timeout: 30_000 });
  assert.ok(dialogs.some((d) => d.startsWith("confirm: Cancel job")), "a confirm before cancelling");
  await shot(page, "06-job-cancelled");

  // ---- the server goes away and comes back: the dashboard reconnects and catches up ----------
  step = "reconnect";
  await page.goto(`${SERVER}/#/`);
  await page.waitForSelector("#conn.live");
  await page.locator("#activity li").first().waitFor();
  const requestFile = path.join(ART, "restart.request");
  const doneFile = path.join(ART, "restart.done");
  fs.writeFileSync(requestFile, "restart the server, please\n");
  await page.waitForSelector("#conn.down", { timeout: 30_000 });
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(doneFile)) {
    if (Date.now() > deadline) throw new Error("the server was not restarted");
    await page.waitForTimeout(100);
  }
  const awayJob = fs.readFileSync(doneFile, "utf8").trim();
  log(`server restarted; job ${awayJob} was submitted before the dashboard reconnected`);
  await page.waitForSelector("#conn.live", { timeout: 30_000 });
  // The missed event is replayed into the activity log, and the queue is refetched.
  await page.locator(`#activity a[href="#/jobs/${awayJob}"]`).waitFor({ timeout: 15_000 });
  await page.locator(`#queue tr[data-job="${awayJob}"]`).waitFor({ timeout: 15_000 });
  await shot(page, "07-reconnected");

  // ---- charts: overlaid curves with legend toggles, sigma, comparison, distribution -----------
  step = "charts";
  await page.goto(`${SERVER}/#/charts?jobs=${[...DONE.slice(0, 11), XSS].join(",")}`);
  const lc = ".charts .chart canvas";
  await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.points || 0) > 0, lc);
  const legend = page.locator(".charts .chart-legend").first().locator(".legend-item").first();
  await legend.click();
  assert.equal(await legend.getAttribute("aria-pressed"), "false");
  await legend.click();
  assert.equal(await legend.getAttribute("aria-pressed"), "true");
  await page.waitForSelector("#chart-env option", { state: "attached" });
  await page.waitForTimeout(400);
  // The XSS job's curve is labelled with its name, as text.
  await waitForText(page, ".charts .chart-legend", `#${XSS} ${XSS_NAME}`);
  await assertInert(page, "the charts");
  await shot(page, "08-charts");
  step = "png export";
  const pngDl = page.waitForEvent("download");
  await page.locator(".charts .chart-tools button", { hasText: "PNG" }).first().click();
  const png = await pngDl;
  const pngPath = path.join(ART, "learning-curves.png");
  await png.saveAs(pngPath);
  assert.deepEqual([...fs.readFileSync(pngPath).subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG file");

  // ---- live debug: the stream, pausable; the raw API panel ------------------------------------
  step = "live";
  await page.goto(`${SERVER}/#/live`);
  await page.locator("#feed .fl").first().waitFor({ timeout: 20_000 });
  await page.click("#pause");
  assert.match(await page.locator("#pause").textContent(), /Resume/);
  await page.fill("#api-path", "/api/v1/workers");
  await page.click(".apiform button[type=submit]");
  await page.waitForFunction((w) => document.querySelector("#api-out").textContent.includes(w), WORKER);
  // The raw answer, with the probe's hardware, is text too; so are the long job's payload log
  // lines that the stream brought while it ran (the feed keeps them across pages).
  await waitForText(page, "#api-out", [IMG, SCRIPT]);
  await waitForText(page, "#feed .ft-logs", [`: ${IMG}`, `: ${SCRIPT}`]);
  await assertInert(page, "the live page");
  await shot(page, "09-live");
  await page.click("#pause");

  // ---- submit form: a plain job, then a study through the study route ------------------------
  step = "submit";
  await page.goto(`${SERVER}/#/submit`);
  await page.fill("#s-method", "island_model");
  // 30 generations: one warning (at 25); data.bin: a result file of 15,974 bytes.
  await page.fill("#s-params", "gens=30\ndelay=0\nfile_bytes=15974");
  // Without a study name, several seeds are a sweep: the form asks for a study name, as the CLI.
  await page.fill("#s-seeds", "1..2");
  await page.locator("#s-preview.error", { hasText: "study name" }).waitFor();
  await page.fill("#s-seeds", "4");
  await page.locator("#s-preview", { hasText: "Will submit 1 job." }).waitFor();
  await page.click("#s-submit");
  await page.locator("#s-result", { hasText: "Submitted 1 job" }).waitFor();
  const plainId = Number((await page.locator("#s-result a").first().textContent()).slice(1));
  const plain = await apiGet(`/api/v1/jobs/${plainId}`);
  assert.equal(plain.spec.seed, 4, "the plain job's seed");
  assert.deepEqual(plain.spec.params, { gens: 30, delay: 0, file_bytes: 15974 }, "params typed as the CLI types them");
  assert.equal(plain.spec.study ?? null, null, "a plain job is in no study");

  step = "submit a study";
  // The server reads the sweep with the command line's grammar and says what is wrong...
  expectStudyRefusals = true;
  await page.fill("#s-study", STUDY);
  await page.fill("#s-seeds", "1-3");
  await page.locator("#s-preview.error", { hasText: 'seeds "1-3"' }).waitFor();
  // ... and previews what a submission adds, by a dry run that writes nothing.
  await page.fill("#s-seeds", "1..3");
  await page.locator("#s-preview", { hasText: `Will submit 3 jobs to study ${STUDY} (a new study)` }).waitFor();
  await shot(page, "10-submit-study-preview");
  await page.click("#s-submit");
  await page.locator("#s-result", { hasText: `Submitted 3 jobs to study ${STUDY}` }).waitFor();
  const study = await apiGet(`/api/v1/studies/${STUDY}`);
  assert.equal(study.record?.submissions?.length, 1, `the study's record: ${JSON.stringify(study.record)}`);
  assert.equal(study.record.submissions[0].jobs.length, 3);
  assert.deepEqual(study.record.submissions[0].sweep.seeds, [1, 2, 3]);
  assert.deepEqual(study.jobs.map((j) => [j.method, j.seed, j.params]), [1, 2, 3].map((s) => ["island_model", s, { gens: 30, delay: 0, file_bytes: 15974 }]));
  // The same definition again is refused (the study's duplicate check), until "again" is ticked.
  await page.locator("#s-preview.error", { hasText: "already holds this definition" }).waitFor();
  await page.click("#s-submit");
  await page.locator("#s-result .error", { hasText: "already holds this definition" }).waitFor();
  await shot(page, "10-submit-study-again");
  await page.check("#s-again");
  await page.locator("#s-preview", { hasText: `Will submit 3 jobs to study ${STUDY} (it will hold 6)` }).waitFor();
  expectStudyRefusals = false;
  assert.equal((await apiGet(`/api/v1/studies/${STUDY}`)).jobs.length, 3, "the refusal and the previews wrote nothing");

  step = "submit a sampled study";
  // A sampler draws configurations from ranges, as `gaia submit --sampler` does. The form is
  // filled one field at a time, and a preview of a state in between (a sampler without its
  // ranges, a grid over a range) may be refused: such refusals are the server's to make.
  expectStudyRefusals = true;
  await page.uncheck("#s-again");
  await page.fill("#s-study", "form-sampled");
  await page.fill("#s-seeds", "1");
  const fixedParams = await page.inputValue("#s-params");
  await page.fill("#s-params", `${fixedParams}\nlr=loguniform(1e-3,1e-1)`);
  await page.selectOption("#s-sampler", "random");
  await page.fill("#s-samples", "3");
  await page.fill("#s-sample-seed", "5");
  await page.fill("#s-early-stop", "asha(metric=best_ever, min_evals=50, eta=3)");
  await page.locator("#s-preview", { hasText: "Will submit 3 jobs to study form-sampled (a new study)" }).waitFor();
  await page.click("#s-submit");
  await page.locator("#s-result", { hasText: "Submitted 3 jobs to study form-sampled" }).waitFor();
  const sampled = await apiGet("/api/v1/studies/form-sampled");
  const lrs = sampled.jobs.map((j) => j.params.lr);
  assert.equal(new Set(lrs).size, 3, `three distinct draws: ${lrs}`);
  assert.ok(lrs.every((lr) => lr >= 1e-3 && lr <= 1e-1), `${lrs}`);
  assert.equal(sampled.record.submissions[0].search.sampler, "random");
  assert.equal(sampled.record.submissions[0].search.seed, 5);
  assert.ok(sampled.record.submissions[0].early_stop.asha, JSON.stringify(sampled.record.submissions[0]));
  await page.selectOption("#s-sampler", "grid");
  await page.fill("#s-samples", "");
  await page.fill("#s-sample-seed", "");
  await page.fill("#s-early-stop", "");
  await page.fill("#s-params", fixedParams);
  // The preview of the form as it is left: no refusal from here on is expected.
  await page.locator("#s-preview:not(.error)", { hasText: /Will submit 1 jobs? to study form-sampled/ }).waitFor();
  expectStudyRefusals = false;

  // ---- a link to the study's charts (and that page reloaded) shows its curves -----------------
  step = "charts deep link";
  const studyIds = study.jobs.map((j) => j.id);
  for (let i = 0; ; i++) {
    const s = await apiGet(`/api/v1/studies/${STUDY}`);
    if (s.jobs.every((j) => j.state === "succeeded")) break;
    assert.ok(i < 600, `the study's jobs did not finish: ${JSON.stringify(s.jobs.map((j) => j.state))}`);
    await page.waitForTimeout(100);
  }
  const studyCurves = async (how) => {
    const first = page.locator(".charts .chart").first();
    await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.points || 0) > 0, ".charts .chart canvas");
    await waitForText(page, ".charts .chart-legend", studyIds.map((id) => `#${id} `));
    assert.ok(await first.locator(".chart-empty").isHidden(), `${how}: the curves say "no data yet"`);
    assert.equal(await page.inputValue("#chart-jobs"), studyIds.join(","), `${how}: the study's jobs`);
  };
  await page.goto(`${SERVER}/#/charts?study=${STUDY}`);
  await studyCurves("the link");
  assert.equal(new URL(page.url()).hash, `#/charts?study=${STUDY}`, "the link stays a link to the study");
  await shot(page, "10-charts-study-link");
  await page.reload();
  await studyCurves("reloaded");

  // ---- one number format per kind of value: a file's size, a count of one ---------------------
  step = "formats";
  await page.goto(`${SERVER}/#/jobs/${studyIds[0]}`);
  const file = page.locator(".files li", { hasText: "data.bin" });
  await file.waitFor();
  assert.equal(await file.locator(".muted").textContent(), "15.6 KiB", "a file's size in binary units");
  assert.equal(await page.locator(".logcounts .lc.warn").textContent(), "1 warning", "one warning, singular");
  assert.equal(await page.locator(".logcounts .lc.err").textContent(), "0 errors");
  const details = await textOf(page, ".jobpage .kv");
  assert.match(details, /max evals100,000/, "a count of evaluations, as the CLI writes it");
  await shot(page, "10-formats-job");

  // ---- a phone-sized screen ------------------------------------------------------------------
  step = "phone";
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${SERVER}/#/`);
  await page.locator(".wcard", { hasText: WORKER }).waitFor();
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 392, `the overview is ${overflow}px wide on a 390px screen`);
  await shot(page, "11-phone-overview");
  await page.goto(`${SERVER}/#/jobs/${LONG}`);
  await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.points || 0) > 0, curve);
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 392, "job page wider than the phone");
  await shot(page, "12-phone-job");
  await page.setViewportSize({ width: 1280, height: 800 });

  // ---- log out; a read token looks but may not act ----------------------------------------------
  step = "logout";
  await page.goto(`${SERVER}/#/`);
  await page.click("#logout");
  await page.waitForSelector("#login");
  assert.equal(await page.evaluate(() => localStorage.getItem("gaia-token")), null);
  await shot(page, "13-logged-out");

  step = "read token";
  await page.fill("#token", READ_TOKEN);
  await page.click("#login button[type=submit]");
  await page.locator(".wcard", { hasText: WORKER }).waitFor();
  assert.equal(await page.locator(".scope").textContent(), "read");
  const queued = page.locator("#queue button[data-cancel]");
  if (await queued.count()) {
    assert.ok(await queued.first().isDisabled(), "cancel is disabled for a read token");
    assert.match(await queued.first().getAttribute("title"), /admin token/);
  }
  await page.goto(`${SERVER}/#/submit`);
  const submit = page.locator("#s-submit");
  assert.ok(await submit.isDisabled(), "submit is disabled for a read token");
  assert.match(await submit.getAttribute("title"), /needs an admin token/);
  // A study's preview is a dry run of its submission: not attempted with a read token (a 403
  // would be in the page's problems).
  await page.fill("#s-study", "read-only-study");
  await page.locator("#s-preview", { hasText: "needs an admin token" }).waitFor();
  await shot(page, "14-read-token-submit");
  await page.click("#logout");
  await page.waitForSelector("#login");

  // ---- a login link: the token in the fragment, out of the address bar at once ---------------
  step = "login link";
  const urls = [];
  const onRequest = (r) => urls.push(r.url());
  page.on("request", onRequest);
  const link = `${SERVER}/#token=${encodeURIComponent(TOKEN)}`;
  const noToken = async (how, token = TOKEN) => {
    assert.equal(await page.evaluate(() => location.hash), "#/", `${how}: the fragment is replaced by #/`);
    assert.ok(!page.url().includes(token), `${how}: the address bar shows the token: ${page.url()}`);
  };
  // Opened in a fresh tab: it logs in as the form would, and the token is remembered.
  await page.goto("about:blank");
  await page.goto(link);
  await page.locator(".wcard", { hasText: WORKER }).waitFor();
  assert.equal(await page.locator(".scope").textContent(), "admin");
  await noToken("opened");
  assert.equal(await page.evaluate(() => localStorage.getItem("gaia-token")), TOKEN);
  // No history entry keeps it: back (to the blank page) and forward land on #/, logged in.
  await page.goBack();
  await page.goForward();
  await page.locator(".wcard", { hasText: WORKER }).waitFor();
  await noToken("back and forward");
  await shot(page, "15-login-link");
  // Followed in a tab logged in with another token: the link's token takes over.
  await page.click("#logout");
  await page.fill("#token", READ_TOKEN);
  await page.click("#login button[type=submit]");
  await page.locator(".scope", { hasText: "read" }).waitFor();
  await page.goto(link);
  await page.locator(".scope", { hasText: "admin" }).waitFor();
  await noToken("followed while logged in");
  await page.locator("#conn.live").waitFor();
  // A refused token: the login form says so, and the fragment is gone all the same.
  await page.click("#logout");
  await page.goto("about:blank");
  expect401 = true;
  await page.goto(`${SERVER}/#token=not-a-token-789`);
  await page.locator("#login-error", { hasText: "link's token was refused" }).waitFor();
  expect401 = false;
  await noToken("refused", "not-a-token-789");
  page.off("request", onRequest);
  // The token went to the server in no page or API URL (only in headers). The event stream is
  // the one documented exception: EventSource cannot send a header, so GET /api/v1/events takes
  // ?token=.
  const leaks = urls.filter((u) => (u.includes(encodeURIComponent(TOKEN)) || u.includes("not-a-token-789")) && new URL(u).pathname !== "/api/v1/events");
  assert.deepEqual(leaks, [], "a token in a request's URL");

  step = "checks";
  await assertInert(page, "the last page");
  assert.deepEqual(dialogs.filter((d) => !d.startsWith("confirm: Cancel job")), [], "unexpected dialogs (an alert means XSS)");
  assert.deepEqual(foreign, [], "requests to other origins");
  assert.deepEqual(problems, [], "errors in the page");
  log("all checks passed");
} catch (e) {
  console.error(`[dashboard] FAILED at step "${step}": ${e.stack || e}`);
  if (problems.length) console.error(`[dashboard] page problems:\n  ${problems.join("\n  ")}`);
  try {
    await shot(page, `failed-${step.replace(/\W+/g, "-")}`);
  } catch {
    /* the page may be gone */
  }
  await ctx.close();
  fs.rmSync(userData, { recursive: true, force: true });
  process.exit(1);
}
await ctx.close();
fs.rmSync(userData, { recursive: true, force: true });
