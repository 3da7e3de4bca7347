// Users and what they use: per user, jobs running and queued, worker and GPU hours, share and
// effective priority (who runs next under fair share), from GET /api/v1/usage. A panel of the
// overview; the token's own user is marked.
"use strict";

import { api } from "./api.js";
import { h, put, section } from "./dom.js";
import { count, dur, fmtNum, hours, percent } from "./format.js";
import { S } from "./session.js";

/** The overview's usage section: `load` fetches and draws it again. */
export function usagePanel() {
  const note = h("span", { class: "muted small", id: "usage-note" });
  const sec = section("Users", note);
  const table = h("table", { class: "grid", id: "usage" });
  sec.body.append(h("div", { class: "scroll-x" }, table));
  const head = h(
    "thead",
    {},
    h("tr", {}, ...["user", "running", "queued", "worker h", "GPU h", "share", "priority"].map((t) => h("th", { text: t }))),
  );
  async function load() {
    const r = await api("/api/v1/usage");
    put(note, r.fair_share ? `fair share · recent use halves every ${dur(r.half_life_secs * 1000)}` : "fair share off: priority, then first come");
    const rows = r.users.map((u) => {
      const mine = S.who && S.who.user === u.user;
      return h(
        "tr",
        { dataset: { user: u.user }, class: mine ? "mine" : "" },
        h("td", { class: "owner", text: u.user, title: mine ? "you: the user this token acts for" : `${u.user}'s jobs: #/jobs?owner=${u.user}` }),
        h("td", { class: "num", text: count(u.running), title: u.max_running ? `at most ${count(u.max_running)} at once` : "no limit" }),
        h("td", { class: "num", text: count(u.queued), title: u.max_queued ? `at most ${count(u.max_queued)} queued` : "no limit" }),
        h("td", { class: "num", text: hours(u.worker_secs), title: "time their jobs held a worker slot, all time" }),
        h("td", { class: "num", text: hours(u.gpu_secs), title: "that time the GPUs their jobs asked for" }),
        h("td", { class: "num", text: fmtNum(u.share), title: `relative weight in fair share: ${percent(u.share_fraction)} of all shares` }),
        h("td", { class: "num", text: fmtNum(u.effective_priority), title: `${percent(u.usage_fraction)} of recent use over ${percent(u.share_fraction)} of the shares: below 1 runs first` }),
      );
    });
    put(table, head, h("tbody", {}, ...rows));
  }
  return { el: sec.el, load };
}
