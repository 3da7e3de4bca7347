// The studies: every study with its progress and ETA (newest first), each a link to its page.
// The server computes progress and ETA (GET /api/v1/studies); this page only shows them.
"use strict";

import { api } from "./api.js";
import { debounce, h, put, section, toast } from "./dom.js";
import { count, dur, percent } from "./format.js";
import { progressBar, statesText, studyEta } from "./parts.js";

export function studiesView() {
  const sec = section("Studies", h("a", { href: "#/submit", class: "btn small ghost", text: "New study" }));
  const table = h("table", { class: "grid", id: "studies" });
  sec.body.append(h("div", { class: "scroll-x" }, table), h("p", { class: "muted small", text: "A study is a sweep of methods × environments × seeds (gaia submit --study NAME, or the Submit page). Open one to see its cells and compare its methods." }));

  async function load() {
    const list = await api("/api/v1/studies");
    const rows = list.studies.map((s) => {
      const p = s.progress;
      return h(
        "tr",
        { dataset: { study: s.name } },
        h("td", {}, h("a", { href: `#/studies/${encodeURIComponent(s.name)}`, text: s.name })),
        h("td", { class: "num", text: count(p.jobs) }),
        h("td", { class: "prog" }, progressBar(p.fraction, percent(p.fraction))),
        h("td", { class: "muted", text: statesText(p.states) }),
        h("td", { class: "num muted", text: studyEta(p) }),
        h("td", { class: "muted", text: s.created_at ? `${dur(Date.now() - s.created_at)} ago` : "–" }),
      );
    });
    put(table, h("thead", {}, h("tr", {}, ...["study", "jobs", "progress", "states", "ETA", "created"].map((t) => h("th", { text: t })))), h("tbody", {}, ...rows));
    if (!rows.length) table.append(h("tbody", {}, h("tr", {}, h("td", { colSpan: 6, class: "muted", text: "No study yet." }))));
  }
  const soon = debounce(() => load().catch(() => {}), 1500);

  return {
    el: sec.el,
    needs: { rows: false, logs: false },
    init() {
      load().catch((e) => e.status !== 401 && toast(`Studies: ${e.message}`, "error"));
    },
    refresh() {
      soon();
    },
    destroy() {
      soon.cancel();
    },
    onLive(type, m) {
      if (type === "job" && m.spec && m.spec.study) soon();
      else if (type === "event" && /^jobs?_/.test(m.kind)) soon();
    },
  };
}
