// Live updates: one EventSource for the whole page, reopened with `after=` the last event id
// when a page needs other messages or the connection drops, and the live debug feed (every
// message, kept across pages, bounded).
"use strict";

import { api } from "./api.js";
import { $ } from "./dom.js";
import { S } from "./session.js";

export const live = {
  es: null,
  needs: { rows: false, logs: false, job: null },
  url: "",
  retry: 1000,
  timer: null,
  lastMessage: 0,
  connected: false,
  wasDown: false,

  want(needs) {
    const n = Object.assign({ rows: false, logs: false, job: null }, needs);
    const same = n.rows === this.needs.rows && n.logs === this.needs.logs && n.job === this.needs.job;
    this.needs = n;
    if (!same || !this.es) this.open();
  },

  open() {
    this.close();
    if (!S.token) return;
    const q = new URLSearchParams({ stream: "1", token: S.token, rows: this.needs.rows ? "1" : "0", logs: this.needs.logs ? "1" : "0" });
    if (this.needs.job) q.set("job", String(this.needs.job));
    if (S.lastEventId) q.set("after", String(S.lastEventId));
    const es = new EventSource(`/api/v1/events?${q}`);
    this.es = es;
    setConn("connecting");
    es.addEventListener("open", () => {
      if (es !== this.es) return;
      this.retry = 1000;
      this.connected = true;
      setConn("live");
      if (this.wasDown) {
        // Events are replayed from Last-Event-ID; rows, jobs and workers are not: refetch.
        this.wasDown = false;
        if (S.view && S.view.refresh) S.view.refresh();
      }
    });
    es.addEventListener("error", () => {
      if (es !== this.es) return;
      this.connected = false;
      this.wasDown = true;
      setConn("down");
      if (es.readyState === EventSource.CLOSED) {
        // The server answered with an error (or is gone): reopen ourselves, with backoff.
        clearTimeout(this.timer);
        this.timer = setTimeout(async () => {
          try {
            await api("/api/v1/whoami");
          } catch (e) {
            if (e.status === 401) return;
          }
          if (es === this.es) this.open();
        }, this.retry);
        this.retry = Math.min(this.retry * 2, 30_000);
      }
    });
    const on = (type, fn) =>
      es.addEventListener(type, (e) => {
        if (es !== this.es) return;
        this.lastMessage = Date.now();
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        fn(data, e);
      });
    on("event", (ev) => {
      if (ev.id <= S.lastEventId) return;
      S.lastEventId = ev.id;
      dispatch("event", ev);
    });
    on("rows", (m) => dispatch("rows", m));
    on("logs", (m) => dispatch("logs", m));
    on("job", (j) => dispatch("job", j));
    on("worker", (w) => dispatch("worker", w));
    on("resync", () => S.view && S.view.refresh && S.view.refresh());
  },

  close() {
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
    this.connected = false;
  },
};

function dispatch(type, msg) {
  liveLog.push(type, msg);
  if (S.view && S.view.onLive) S.view.onLive(type, msg);
}

function setConn(state) {
  const c = $("#conn");
  c.className = `conn ${state}`;
  c.title = { live: "Live: updates arrive as they happen", connecting: "Connecting to the event stream…", down: "Connection lost: reconnecting and catching up" }[state] || state;
  $("#conn-text").textContent = { live: "live", connecting: "connecting", down: "reconnecting" }[state] || state;
}

export const liveLog = {
  items: [],
  max: 2000,
  listeners: new Set(),
  push(type, msg) {
    const item = { at: Date.now(), type, msg };
    this.items.push(item);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
    for (const l of this.listeners) l(item);
  },
};
