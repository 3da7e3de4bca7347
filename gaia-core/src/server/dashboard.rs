//! The dashboard's static assets, embedded at build time (no build step, no CDN).
//!
//! Served with a Content-Security-Policy that allows scripts, styles, images and connections from
//! this server only: no inline script, no `eval`, no inline style sheets, no framing. The
//! dashboard inserts every outside string as text, and the policy is the second wall should one
//! ever slip through as HTML.

use hyper::StatusCode;

use super::http::{HResult, HttpError, bytes_response};
use super::router::Params;

const INDEX: &str = include_str!("../../../dashboard/index.html");
const APP_JS: &str = include_str!("../../../dashboard/app.js");
const CHART_JS: &str = include_str!("../../../dashboard/chart.js");
const STYLE: &str = include_str!("../../../dashboard/style.css");
const FAVICON: &str = include_str!("../../../dashboard/favicon.svg");

/// The Content-Security-Policy of every dashboard asset.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The asset named by a path (`/` is the page itself), with its content type.
fn lookup(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "" | "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "chart.js" => (CHART_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "favicon.svg" | "favicon.ico" => (FAVICON, "image/svg+xml"),
        _ => return None,
    })
}

pub(crate) fn asset(params: &Params) -> HResult {
    let name = params.0.first().map(String::as_str).unwrap_or("");
    let Some((body, ctype)) = lookup(name) else {
        return Err(HttpError::not_found(format!("no such page: /{name}")));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        for name in ["", "app.js", "chart.js", "style.css", "favicon.svg"] {
            assert!(lookup(name).is_some(), "{name}");
        }
        for referenced in ["/app.js", "/style.css", "/favicon.svg"] {
            assert!(INDEX.contains(referenced), "{referenced}");
        }
        assert!(APP_JS.contains("from \"./chart.js\""));
        assert!(lookup("../Cargo.toml").is_none());
    }

    #[test]
    fn the_policy_forbids_inline_script_and_eval() {
        let script = CSP
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .expect("a script-src directive");
        assert_eq!(script, "script-src 'self'");
        assert!(!CSP.contains("unsafe"));
        // No inline script or style in the page itself: the policy would block it anyway.
        assert!(!INDEX.contains("<script>"));
        assert!(!INDEX.contains("<style"));
        assert!(!INDEX.contains(" style="));
        for handler in [
            "onclick=",
            "onload=",
            "onerror=",
            "onsubmit=",
            "javascript:",
        ] {
            assert!(
                !INDEX.contains(handler),
                "inline handler {handler} in index.html"
            );
        }
    }
}
