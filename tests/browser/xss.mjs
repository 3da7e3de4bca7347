// What the browser tests share about XSS: the payloads that tests/dashboard.rs plants in every
// outside string the server lets through (job names, params keys and values, log lines, the
// status an experiment reports, a failed job's error, a built-in job's input as the activity log
// and the jobs list show it, a worker's reported hardware), and the checks that they reached the
// page as text and nothing ran.
//
// The helpers only use `page.evaluate(fn, arg)` with one argument, which playwright-core
// (Chromium) and puppeteer-core (Firefox over WebDriver BiDi) both understand.

/** The job name the issue names. */
export const XSS_NAME = "<img src=x onerror=alert(1)>";
/** Sets window.__xss if an element is ever built from it. */
export const IMG = "<img src=x onerror=window.__xss=1>";
/** Sets window.__xss if it is ever parsed (and not blocked by the CSP). */
export const SCRIPT = "<script>window.__xss=2</script>";

/** The text of every element matching `sel`, joined by newlines ("" when none matches). */
export function textOf(page, sel) {
  return page.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent).join("\n"), sel);
}

/** Polls `fn(arg)` in the page until it returns something truthy; returns that. */
export async function until(page, what, fn, arg, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await page.evaluate(fn, arg);
      if (last) return last;
    } catch (e) {
      // A navigation may destroy the context mid-poll; try again.
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the text of `sel` contains every one of `needles`, shown literally. */
export function waitForText(page, sel, needles, timeout) {
  return until(
    page,
    `${sel} to show ${JSON.stringify(needles)} as text`,
    ([s, n]) => {
      const t = [...document.querySelectorAll(s)].map((e) => e.textContent).join("\n");
      return n.every((x) => t.includes(x)) && t.length;
    },
    [sel, [].concat(needles)],
    timeout,
  );
}

/**
 * Throws unless the page shows no trace of a payload turned into markup: no script ran
 * (window.__xss), no <img src=x>, no element with an inline handler, no script element but the
 * dashboard's own module. (The CSP forbids inline script, so a regression would most likely show
 * here, in the DOM, rather than as a script that ran: both are checked.)
 */
export async function assertInert(page, where) {
  const r = await page.evaluate(() => ({
    xss: typeof window.__xss === "undefined" ? null : String(window.__xss),
    img: document.querySelectorAll('img[src="x"]').length,
    handlers: [...document.querySelectorAll("*")].filter((e) => [...e.attributes].some((a) => /^on/i.test(a.name))).map((e) => e.tagName).slice(0, 5),
    scripts: [...document.querySelectorAll("script")].map((s) => s.getAttribute("src") || "inline"),
  }));
  const bad = [];
  if (r.xss !== null) bad.push(`window.__xss = ${r.xss}: a payload ran`);
  if (r.img) bad.push(`${r.img} <img src=x> element(s) in the DOM`);
  if (r.handlers.length) bad.push(`elements with inline on* handlers: ${r.handlers.join(", ")}`);
  if (r.scripts.join() !== "/app.js") bad.push(`script elements: ${r.scripts.join(", ")}`);
  if (bad.length) throw new Error(`XSS on ${where}: ${bad.join("; ")}`);
}
