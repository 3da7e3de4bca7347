// The activity log: the stored events (jobs submitted, started, ended; workers joining and
// leaving), newest first, live. A panel of the overview.
"use strict";

import { h, put, section } from "./dom.js";
import { clock, when } from "./format.js";

function eventItem(ev) {
  const cls = ev.kind.includes("failed") || ev.kind.includes("lost") || ev.kind.includes("timed_out") ? "bad" : ev.kind.includes("succeeded") ? "good" : ev.kind.includes("worker") ? "wk" : "";
  return h("li", { class: `ev ${cls}`, dataset: { id: String(ev.id) } }, h("time", { text: clock(ev.at), title: when(ev.at) }), h("span", { class: "ekind", text: ev.kind.replace(/_/g, " ") }), ev.job ? h("a", { href: `#/jobs/${ev.job}`, class: "evmsg plain", text: ev.message }) : h("span", { class: "evmsg", text: ev.message }));
}

/** The overview's activity section: `setAll` takes the stored events (oldest first), `add` one new. */
export function activityPanel() {
  const sec = section("Activity");
  const alist = h("ol", { class: "activity", id: "activity" });
  sec.body.append(alist);
  return {
    el: sec.el,
    setAll(events) {
      put(alist, ...events.slice().reverse().map(eventItem));
    },
    add(ev) {
      alist.prepend(eventItem(ev));
      while (alist.children.length > 200) alist.lastChild.remove();
    },
  };
}
