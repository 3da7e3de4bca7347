// The dashboard for a lab of users, in headless Chromium (playwright-core), run by
// tests/dashboard.rs (`dashboard_for_users_in_headless_chromium`) against a real `gaia serve`
// with users alice and bob and queued jobs of alice, bob and the admin:
//
//   SERVER=http://127.0.0.1:7434 ALICE_TOKEN=... ALICE_JOB=1 BOB_JOB=2 ADMIN_JOB=3 \
//   node tests/browser/users.mjs
//
// Logged in with alice's submit token: the header names her; lists show each job's owner; the
// "my jobs" filter shows hers only; she may cancel her job, not bob's or the admin's (the
// button says whose it is); the submit form works for her (a job and a study's preview); the
// overview's usage panel lists every user, hers marked. Screenshots in $ARTIFACTS (default
// test-artifacts/users).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { until } from "./xss.mjs";
import { env } from "./env.mjs";

const SERVER = env("SERVER");
const ALICE = env("ALICE_TOKEN");
const ALICE_JOB = Number(env("ALICE_JOB"));
const BOB_JOB = Number(env("BOB_JOB"));
const ADMIN_JOB = Number(env("ADMIN_JOB"));
const ART = env("ARTIFACTS", path.resolve("../../test-artifacts/users"));
fs.mkdirSync(ART, { recursive: true });

const userData = fs.mkdtempSync(path.join(os.tmpdir(), "gaia-users-"));
const ctx = await chromium.launchPersistentContext(userData, {
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
const dialogs = [];
let step = "start";
const page = ctx.pages()[0] || (await ctx.newPage());
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
});
page.on("response", (r) => {
  if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${new URL(r.url()).pathname}`);
});
page.on("dialog", async (d) => {
  dialogs.push(d.message());
  await d.accept();
});
const shot = (name) => page.screenshot({ path: path.join(ART, `${name}.png`), fullPage: true });
const rowOf = (table, id) => page.locator(`#${table} tr[data-job="${id}"]`);

try {
  step = "login";
  await page.goto(`${SERVER}/`);
  await page.waitForSelector("#login");
  await page.fill("#token", ALICE);
  await page.click("#login button[type=submit]");
  await page.locator("#usage tr[data-user=alice]").waitFor();
  assert.equal(await page.locator(".scope").textContent(), "submit");
  assert.equal(await page.locator("#who-user").textContent(), "alice");

  step = "usage panel";
  for (const u of ["alice", "bob", "admin"]) await page.locator(`#usage tr[data-user=${u}]`).waitFor();
  assert.ok((await page.locator("#usage tr[data-user=alice]").getAttribute("class")).includes("mine"), "her own line is marked");
  assert.match(await page.locator("#usage tr[data-user=alice] td.owner").getAttribute("title"), /^you/);
  assert.match(await page.locator("#usage-note").textContent(), /fair share/);
  // The queue shows owners; her cancel button works, the others' are disabled and say whose.
  assert.equal((await rowOf("queue", BOB_JOB).locator("td.owner").textContent()).trim(), "bob");
  await shot("01-overview-as-alice");

  step = "jobs list";
  await page.goto(`${SERVER}/#/jobs`);
  await rowOf("jobs", ADMIN_JOB).waitFor();
  assert.equal((await rowOf("jobs", ALICE_JOB).locator("td.owner").textContent()).trim(), "alice");
  assert.equal((await rowOf("jobs", ADMIN_JOB).locator("td.owner").textContent()).trim(), "admin");
  const bobCancel = rowOf("jobs", BOB_JOB).locator("button[data-cancel]");
  assert.ok(await bobCancel.isDisabled(), "alice cannot cancel bob's job");
  assert.match(await bobCancel.getAttribute("title"), /belongs to bob/);
  assert.ok(await rowOf("jobs", ADMIN_JOB).locator("button[data-cancel]").isDisabled(), "nor the admin's");
  const mineCancel = rowOf("jobs", ALICE_JOB).locator("button[data-cancel]");
  assert.ok(!(await mineCancel.isDisabled()), "alice cancels her own job");

  step = "my jobs";
  await page.check("#f-mine");
  await until(page, "only alice's jobs", () => location.hash.includes("mine=1") && document.querySelectorAll("#jobs tbody tr[data-job]").length > 0);
  await page.waitForTimeout(300);
  const owners = await page.locator("#jobs tbody td.owner").allTextContents();
  assert.ok(owners.length > 0 && owners.every((o) => o.trim() === "alice"), `owners shown: ${owners}`);
  await shot("02-my-jobs");
  await rowOf("jobs", ALICE_JOB).locator("button[data-cancel]").click();
  await until(page, "her job cancelled", (id) => document.querySelector(`#jobs tr[data-job="${id}"] .badge`)?.textContent === "cancelled", ALICE_JOB);
  await page.uncheck("#f-mine");
  await page.fill("#f-owner", "bob");
  await page.press("#f-owner", "Enter");
  await until(page, "bob's jobs", () => location.hash.includes("owner=bob"));
  await page.waitForTimeout(300);
  const bobs = await page.locator("#jobs tbody td.owner").allTextContents();
  assert.ok(bobs.length > 0 && bobs.every((o) => o.trim() === "bob"), `owners shown: ${bobs}`);

  step = "submit";
  await page.goto(`${SERVER}/#/submit`);
  const submit = page.locator("#s-submit");
  assert.ok(!(await submit.isDisabled()), "a submit token may use the submit form");
  assert.match(await page.locator("#s-owner").textContent(), /submitted as alice/);
  await page.selectOption("#s-kind", "hash");
  await page.fill("#s-input", "from alice's browser");
  await page.fill("#s-gpus", "8");
  await submit.click();
  const link = page.locator("#s-result a[href^='#/jobs/']").first();
  await link.waitFor();
  const id = Number((await link.getAttribute("href")).split("/").pop());
  const job = await page.evaluate(async ([s, t, id]) => (await fetch(`${s}/api/v1/jobs/${id}`, { headers: { Authorization: `Bearer ${t}` } })).json(), [SERVER, ALICE, id]);
  assert.equal(job.owner, "alice");
  // A study's preview is a dry run: a submit token makes it too.
  await page.selectOption("#s-kind", "experiment");
  await page.fill("#s-method", "cma_es,openai_es");
  await page.fill("#s-study", "alices-sweep");
  await page.locator("#s-preview", { hasText: /2 jobs/ }).waitFor();
  await shot("03-submit-as-alice");

  step = "job page";
  await page.goto(`${SERVER}/#/jobs/${BOB_JOB}`);
  await page.locator("#job-owner", { hasText: "bob" }).waitFor();
  assert.ok(await page.locator("#cancel-job").isDisabled(), "no cancel of bob's job from his page");

  step = "checks";
  assert.deepEqual(dialogs.filter((d) => !d.startsWith("Cancel job")), [], "unexpected dialogs");
  assert.deepEqual(problems, [], "errors in the page");
  console.log(`[users] all checks passed; screenshots in ${ART}`);
} catch (e) {
  console.error(`[users] FAILED at step "${step}": ${e.stack || e}`);
  if (problems.length) console.error(`[users] page problems:\n  ${problems.join("\n  ")}`);
  try {
    await shot(`failed-${step.replace(/\W+/g, "-")}`);
  } catch {
    /* the page may be gone */
  }
  await ctx.close();
  fs.rmSync(userData, { recursive: true, force: true });
  process.exit(1);
}
await ctx.close();
fs.rmSync(userData, { recursive: true, force: true });
