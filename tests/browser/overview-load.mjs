// How long the dashboard's overview takes to be fully rendered in headless Chromium (Debian's
// chromium, driven by playwright-core like dashboard.mjs). Run by benches/dashboard.rs against a
// release `gaia serve` it filled with 10,000 jobs and 50 workers; by hand:
//
//   SERVER=http://127.0.0.1:7434 TOKEN=... RUNS=10 WORKERS=50 GROUPS=12 \
//   node tests/browser/overview-load.mjs
//
// "Fully rendered": the tiles, the worker cards (the first 30 of many, and the "Show N more"
// button), the queue (30 running + 15 queued rows, as app.js asks), the best table with one row
// per (environment, method), the activity log (60 events) and the live event stream open.
// Time from the start of the navigation (performance.timeOrigin) to the first animation frame at
// which all of it is in the DOM. "cold": a fresh browser context each run (empty cache and
// storage, the token put in localStorage beforehand, as a remembered login); "warm": a reload in
// the same context. Prints one line of JSON: {"cold": [{rendered, dcl, api} ms...], "warm": [...]}.
import { chromium } from "playwright-core";
import { env } from "./env.mjs";

const SERVER = env("SERVER");
const TOKEN = env("TOKEN");
const RUNS = Number(env("RUNS", "10"));
const WORKERS = Number(env("WORKERS", "50"));
const GROUPS = Number(env("GROUPS", "12"));

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const expected = { cards: Math.min(WORKERS, 30), queue: 45, groups: GROUPS, events: 60 };

/**
 * Navigates and waits until the overview is complete: milliseconds since navigation start until
 * then (`rendered`), until DOMContentLoaded (the page and its scripts), and until the last of the
 * overview's API answers had arrived (`api`, from the browser's resource timing).
 */
async function load(page, url) {
  await page.goto(url, { waitUntil: "commit" });
  const handle = await page.waitForFunction(
    (e) => {
      const n = (s) => document.querySelectorAll(s).length;
      const ok =
        n(".tiles .tile") === 7 &&
        n("#workers .wcard") === e.cards &&
        n("#queue tbody tr[data-job]") === e.queue &&
        n("#best tbody tr") === e.groups &&
        n("#activity li") >= e.events &&
        !!document.querySelector("#conn.live");
      return ok && performance.now();
    },
    expected,
    { polling: "raf", timeout: 30_000 },
  );
  const rendered = await handle.jsonValue();
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const api = performance
      .getEntriesByType("resource")
      .filter((r) => r.name.includes("/api/v1/") && !r.name.includes("stream=1"))
      .map((r) => r.responseEnd);
    return { dcl: nav.domContentLoadedEventEnd, api: Math.max(0, ...api) };
  });
  return { rendered, ...timing };
}

const storageState = { cookies: [], origins: [{ origin: SERVER, localStorage: [{ name: "gaia-token", value: TOKEN }] }] };
const out = { cold: [], warm: [], expected, chromium: browser.version() };
const problems = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, storageState });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => problems.push(e.message));
    out.cold.push(await load(page, `${SERVER}/#/`));
    // A reload of the same page: the browser's cache as the server's headers allow.
    out.warm.push(await load(page, `${SERVER}/?reload=${i}#/`));
    await ctx.close();
  }
} catch (e) {
  console.error(`[overview-load] ${e.stack || e}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
if (problems.length) {
  console.error(`[overview-load] page errors: ${problems.join("; ")}`);
  process.exit(1);
}
console.log(JSON.stringify(out));
