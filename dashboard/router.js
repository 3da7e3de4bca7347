// Routing: the page's hash (`#/jobs/12`, `#/charts?study=demo`) picks one view; the view on
// screen is replaced whole, and the event stream is told what the new one needs.
"use strict";

import { $, h } from "./dom.js";
import { S } from "./session.js";
import { live } from "./stream.js";
import { chartsView } from "./view-charts.js";
import { jobView } from "./view-job.js";
import { jobsView } from "./view-jobs.js";
import { liveView } from "./view-live.js";
import { overviewView } from "./view-overview.js";
import { studiesView } from "./view-studies.js";
import { studyView } from "./view-study.js";
import { submitView } from "./view-submit.js";
import { workerView } from "./view-worker.js";

const ROUTES = [
  [/^\/?$/, () => overviewView()],
  [/^\/jobs\/(\d+)$/, (m) => jobView(Number(m[1]))],
  [/^\/jobs$/, (m, q) => jobsView(q)],
  [/^\/charts$/, (m, q) => chartsView(q)],
  [/^\/live$/, () => liveView()],
  [/^\/studies$/, () => studiesView()],
  [/^\/studies\/(.+)$/, (m) => studyView(decodeURIComponent(m[1]))],
  [/^\/submit$/, () => submitView()],
  [/^\/workers\/([^/]+)$/, (m) => workerView(decodeURIComponent(m[1]))],
];

export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  return { path, q: new URLSearchParams(qs || "") };
}

export function route() {
  if (!S.token || !S.who) return;
  const { path, q } = parseHash();
  if (S.view && S.view.destroy) S.view.destroy();
  S.view = null;
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").replace(/^#/, "");
    a.classList.toggle("active", target === "/" ? path === "/" || path === "" : path.startsWith(target));
  }
  for (const [re, make] of ROUTES) {
    const m = path.match(re);
    if (m) {
      S.view = make(m, q);
      $("#app").replaceChildren(S.view.el);
      if (S.view.init) S.view.init();
      live.want(S.view.needs || {});
      window.scrollTo(0, 0);
      return;
    }
  }
  $("#app").replaceChildren(h("div", { class: "card" }, h("h2", { text: "Not found" }), h("p", {}, "No page at ", h("code", { text: location.hash }), ". ", h("a", { href: "#/", text: "Go to the overview" }))));
}
