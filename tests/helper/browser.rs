//! The browsers the end-to-end tests drive: Debian's Chromium (playwright-core) and Firefox ESR
//! (puppeteer-core over WebDriver BiDi), and the node scripts in `tests/browser/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{prerequisites, repo_root};

/// The folder of the browser scripts and their node packages.
pub fn browser_dir() -> PathBuf {
    repo_root().join("tests/browser")
}

/// Debian's Chromium, or `$CHROMIUM`.
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Debian's Firefox ESR, or `$FIREFOX`.
pub fn firefox() -> PathBuf {
    std::env::var_os("FIREFOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"))
}

/// Whether a browser test can run here (see [`prerequisites`]): the browser, node, and the npm
/// package that drives it.
pub fn browser_tools_present(test: &str, browser: &Path, apt: &str, driver: &str) -> bool {
    let mut missing = Vec::new();
    if !browser.exists() {
        missing.push(format!("{} (apt-get install -y {apt})", browser.display()));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install -y nodejs npm)".into());
    }
    if !browser_dir().join("node_modules").join(driver).exists() {
        missing.push(format!(
            "tests/browser/node_modules/{driver} (cd tests/browser && npm ci)"
        ));
    }
    prerequisites(test, &missing)
}
