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

/** Whether the token may act on everything (an admin token), not only look. */
export const isAdmin = () => S.who && S.who.scope === "admin";

/** Whether the token may submit jobs and studies: an admin or a submit token. */
export const maySubmit = () => !!S.who && (S.who.scope === "admin" || S.who.scope === "submit");

/** Whether the token may change (cancel, extend) what `owner` owns: an admin token everyone's, a submit token its own user's. */
export const mayActOn = (owner) => !!S.who && (S.who.scope === "admin" || (S.who.scope === "submit" && S.who.user === owner));
