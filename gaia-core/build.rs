//! Stamps the version the binary reports. `GAIA_BUILD_VERSION` overrides the crate version so a
//! release (and the self-update test) can build binaries that differ only in their version.
fn main() {
    println!("cargo:rerun-if-env-changed=GAIA_BUILD_VERSION");
    let version = std::env::var("GAIA_BUILD_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION")
        });
    println!("cargo:rustc-env=GAIA_VERSION={version}");
}
