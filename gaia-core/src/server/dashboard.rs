//! The dashboard's static assets, embedded at build time (no build step, no CDN).
//!
//! Served with a Content-Security-Policy that forbids inline script and every origin but this
//! server's own.

use hyper::StatusCode;

use super::http::{HResult, HttpError, bytes_response};
use super::router::Params;

const INDEX: &str = include_str!("../../../dashboard/index.html");
const APP_JS: &str = include_str!("../../../dashboard/app.js");
const STYLE: &str = include_str!("../../../dashboard/style.css");

/// The Content-Security-Policy of every dashboard page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub(crate) fn asset(params: &Params) -> HResult {
    let name = params.0.first().map(String::as_str).unwrap_or("index.html");
    let (body, ctype) = match name {
        "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "favicon.ico" => return Ok(bytes_response(StatusCode::NO_CONTENT, "image/x-icon", "")),
        other => return Err(HttpError::not_found(format!("no such page: /{other}"))),
    };
    let mut res = bytes_response(StatusCode::OK, ctype, body);
    let h = res.headers_mut();
    h.insert(
        "content-security-policy",
        CSP.parse().expect("valid header"),
    );
    h.insert("x-frame-options", "DENY".parse().expect("valid header"));
    Ok(res)
}
