// Who is logged in, and the page's shared state: the token (kept in localStorage), what the
// server says the token may do, the view on screen, and the last event seen.
"use strict";

export const TOKEN_KEY = "gaia-token";
export const S = {
  token: localStorage.getItem(TOKEN_KEY),
  who: null,
  view: null,
  lastEventId: 0,
};

/** Whether the token may act (submit, cancel), not only look. */
export const isAdmin = () => S.who && S.who.scope === "admin";
