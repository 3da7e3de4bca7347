//! The dashboard's static assets, embedded at build time (no build step, no CDN).
//!
//! Served with a Content-Security-Policy that allows scripts, styles, images and connections from
//! this server only: no inline script, no `eval`, no inline style sheets, no framing. The
//! dashboard inserts every outside string as text, and the policy is the second wall should one
//! ever slip through as HTML.

use hyper::StatusCode;

use super::http::{HResult, HttpError, bytes_response};

const JS: &str = "text/javascript; charset=utf-8";

/// One embedded file: (name, contents, content type).
macro_rules! asset {
    ($name:literal, $ctype:expr) => {
        (
            $name,
            include_str!(concat!("../../../dashboard/", $name)),
            $ctype,
        )
    };
}

/// Every file of the dashboard folder, by the name it is served under (`/{name}`), with its
/// content type. `app.js` is the entry module the page loads; it imports the others (one module
/// per view, plus the shared ones), so a new module is one more line here and one
/// `modulepreload` link in index.html.
const ASSETS: &[(&str, &str, &str)] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("chart.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("parts.js", JS),
    asset!("router.js", JS),
    asset!("rows.js", JS),
    asset!("session.js", JS),
    asset!("stream.js", JS),
    asset!("view-activity.js", JS),
    asset!("view-charts.js", JS),
    asset!("view-compare.js", JS),
    asset!("view-job.js", JS),
    asset!("view-jobs.js", JS),
    asset!("view-live.js", JS),
    asset!("view-login.js", JS),
    asset!("view-overview.js", JS),
    asset!("view-studies.js", JS),
    asset!("view-study.js", JS),
    asset!("view-submit.js", JS),
    asset!("view-worker.js", JS),
    asset!("view-usage.js", JS),
    asset!("view-workers.js", JS),
];

/// The Content-Security-Policy of every dashboard asset.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The asset named by a path (`/` is the page itself), with its content type.
fn lookup(name: &str) -> Option<(&'static str, &'static str)> {
    let name = match name {
        "" => "index.html",
        "favicon.ico" => "favicon.svg",
        other => other,
    };
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, body, ctype)| (body, ctype))
}

/// The asset at `/{name}` (`""` for `/`: the page itself).
pub(crate) fn asset(name: &str) -> HResult {
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

    /// The relative imports (`from "./x.js"`) of a module.
    fn imports(code: &str) -> Vec<&str> {
        code.split(" from \"./")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        for name in ["", "app.js", "chart.js", "style.css", "favicon.svg"] {
            assert!(lookup(name).is_some(), "{name}");
        }
        let index = lookup("").unwrap().0;
        for referenced in ["/app.js", "/style.css", "/favicon.svg"] {
            assert!(index.contains(referenced), "{referenced}");
        }
        // Every module any module imports is served, so the page never loads half of itself.
        for (name, code, _) in ASSETS.iter().filter(|a| a.0.ends_with(".js")) {
            for import in imports(code) {
                assert!(
                    lookup(import).is_some(),
                    "{name} imports ./{import}, not served"
                );
            }
        }
        assert!(imports(lookup("view-charts.js").unwrap().0).contains(&"chart.js"));
        // ... and the page preloads every one of them (a forgotten one would only load late).
        for (name, _, _) in ASSETS
            .iter()
            .filter(|a| a.0.ends_with(".js") && a.0 != "app.js")
        {
            let link = format!("<link rel=\"modulepreload\" href=\"/{name}\">");
            assert!(index.contains(&link), "index.html does not preload {name}");
        }
        assert!(lookup("../Cargo.toml").is_none());
    }

    /// A module added to the folder but not to [`ASSETS`] would be a 404 in the browser.
    #[test]
    fn every_file_of_the_dashboard_folder_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboard");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.0.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
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
        let index = lookup("").unwrap().0;
        assert!(!index.contains("<script>"));
        assert!(!index.contains("<style"));
        assert!(!index.contains(" style="));
        for handler in [
            "onclick=",
            "onload=",
            "onerror=",
            "onsubmit=",
            "javascript:",
        ] {
            assert!(
                !index.contains(handler),
                "inline handler {handler} in index.html"
            );
        }
    }
}
