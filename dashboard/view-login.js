// Logging in: a token is checked with whoami before it is kept, whether it was pasted into the
// form or came in a login link (`#token=…`, read by app.js).
"use strict";

import { api } from "./api.js";
import { $, h } from "./dom.js";
import { S, TOKEN_KEY } from "./session.js";

/**
 * Checks a token with the server and, if it may read, keeps it (in S and localStorage) with
 * what the server says it may do. Throws an Error with a message for the user otherwise, leaving
 * the session as it was.
 */
export async function logIn(token) {
  let who;
  try {
    who = await api("/api/v1/whoami", { noLogout: true, token });
  } catch (x) {
    throw new Error(
      x.status === 401
        ? "The server does not know this token."
        : x.status === 403
          ? "This token may not read (a worker token?): use a read or admin token."
          : `Could not log in: ${x.message}`,
    );
  }
  localStorage.setItem(TOKEN_KEY, token);
  S.token = token;
  S.who = who;
}

/** Shows the login form with `message`; once a token is accepted and kept, calls `onLogin`. */
export function showLogin(message, onLogin) {
  document.body.classList.add("logged-out");
  $("#whoami").textContent = "";
  const input = h("input", { type: "password", id: "token", name: "token", placeholder: "paste a token", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error", id: "login-error", text: message || "", attrs: { role: "alert" } });
  const form = h(
    "form",
    { class: "login card", id: "login" },
    h("h2", { text: "Log in to GAIA" }),
    h("p", { class: "muted", text: "Paste an API token. gaia serve printed the admin token when it started; `gaia token create --scope read --name NAME` makes a read-only one." }),
    h("label", { for: "token", text: "Token" }),
    input,
    err,
    h("button", { type: "submit", class: "btn primary", text: "Log in" }),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    err.textContent = "";
    try {
      await logIn(t);
    } catch (x) {
      err.textContent = x.message;
      return;
    }
    onLogin();
  });
  $("#app").replaceChildren(form);
  input.focus();
}
