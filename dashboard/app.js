// The GAIA dashboard: plain JavaScript ES modules, no framework, no build step, embedded in the
// server. This entry module logs in (or out) and starts the router; every page is its own module.
//
// Modules, each importing only those below it (no module imports one that imports it back):
//   app.js          boot, start after login, logout
//   router.js       the hash → one view; view-*.js, one module per page or panel:
//     view-overview.js (with view-workers.js, view-activity.js), view-jobs.js, view-job.js,
//     view-charts.js, view-live.js, view-submit.js, view-login.js, view-studies.js,
//     view-study.js (with view-compare.js: a study's cells, more seeds, the method comparison)
//   stream.js       the one EventSource and the live debug feed
//   parts.js        badges, progress bars, the admin-only button, a job's row
//   rows.js         a job's downsampled curve as chart points
//   api.js          every API call, with the token; chart.js the canvas charts
//   session.js      the token, its scope, the view on screen
//   dom.js          h() / put(): building elements, strings always as text
//   format.js       one format per kind of value
//
// Rules kept throughout:
// - Every string from outside (job names, params, log lines, worker names, messages) reaches the
//   page through textContent / createTextNode / property assignment, never as HTML.
// - Updates arrive by server-sent events (one EventSource, reopened with `after=` the last event
//   id when a page needs other messages); lists are paginated on the server.
"use strict";

import { api, setUnauthorized } from "./api.js";
import { $, h, toast } from "./dom.js";
import { route } from "./router.js";
import { S, TOKEN_KEY } from "./session.js";
import { live } from "./stream.js";
import { logIn, showLogin } from "./view-login.js";

function logout(message) {
  localStorage.removeItem(TOKEN_KEY);
  $("#toasts").replaceChildren();
  S.token = null;
  S.who = null;
  S.lastEventId = 0;
  live.close();
  if (S.view && S.view.destroy) S.view.destroy();
  S.view = null;
  showLogin(message, start);
}

async function start() {
  document.body.classList.remove("logged-out");
  if (!S.who) {
    try {
      S.who = await api("/api/v1/whoami", { noLogout: true });
    } catch (e) {
      if (e.status === 401 || e.status === 403) return logout(e.status === 401 ? "This token is no longer valid. Log in again." : "This token may not read the dashboard.");
      $("#app").replaceChildren(h("p", { class: "error", text: `Cannot reach the server: ${e.message}` }));
      setTimeout(start, 3000);
      return;
    }
  }
  $("#whoami").replaceChildren(
    h("span", { class: "user", id: "who-user", text: S.who.user || S.who.name, title: "the user this token acts for: what it submits is theirs" }),
    h("span", { class: `scope sc-${S.who.scope}`, text: S.who.scope, title: `token "${S.who.name}" of ${S.who.user || "admin"} · gaia ${S.who.version}` }),
  );
  route();
}

// ---- login links --------------------------------------------------------------------------------

/**
 * The token of a login link (the dashboard's address with `#token=TOKEN`, as `gaia demo` prints
 * it), or null. Browsers never send a fragment, so the link puts the token in no request; it is
 * taken out of the address bar at once, replacing the entry (not adding one), so no history
 * entry keeps it.
 */
function tokenOfLink() {
  const frag = location.hash.replace(/^#\/?/, "");
  if (!frag.startsWith("token=")) return null;
  history.replaceState(history.state, "", `${location.pathname}${location.search}#/`);
  return (new URLSearchParams(frag).get("token") || "").trim() || null;
}

/** Logs in with a link's token as the login form would; a refused one leaves the session as it was. */
async function followLink(token) {
  try {
    await logIn(token);
  } catch (e) {
    const why = `The link's token was refused. ${e.message}`;
    if (!S.token) return showLogin(why, start);
    toast(why, "error");
    return S.who ? route() : start();
  }
  // A new token: the stream reopens with it, from the new session's events.
  live.close();
  S.lastEventId = 0;
  start();
}

// ---- boot ---------------------------------------------------------------------------------------

setUnauthorized(logout);
$("#logout").addEventListener("click", () => logout("Logged out."));
window.addEventListener("hashchange", () => {
  const linked = tokenOfLink();
  if (linked) followLink(linked);
  else route();
});
const linked = tokenOfLink();
if (linked) followLink(linked);
else if (S.token) start();
else showLogin(undefined, start);
