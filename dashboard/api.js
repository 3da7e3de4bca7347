// Talking to the server: every API call sends the token in the Authorization header (a
// download too, never in its URL) and turns an error answer into an ApiError with the server's
// own message.
"use strict";

import { saveBlob } from "./chart.js";
import { S } from "./session.js";

let onUnauthorized = () => {};

/**
 * What to do when the server refuses the token (401): the app logs out. Set by app.js, so this
 * module needs nothing above it.
 */
export function setUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * GET/POST an API path with the token (`opts.token`, else the session's); answers JSON, throws
 * ApiError with the server's message.
 */
export async function api(path, opts = {}) {
  const headers = { Authorization: `Bearer ${opts.token ?? S.token}` };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method: opts.method || (opts.body !== undefined ? "POST" : "GET"),
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (r.status === 401 && !opts.noLogout) {
    onUnauthorized("The server refused this token (401). Log in again.");
    throw new ApiError(401, "unauthorized");
  }
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

/** Downloads an API path (with the token in a header, not the URL) under `name`. */
export async function download(path, name) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${S.token}` } });
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      msg = (await r.json()).error || msg;
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, msg);
  }
  saveBlob(await r.blob(), name);
}
