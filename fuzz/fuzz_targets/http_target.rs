#![no_main]
//! What the server itself parses of a request head (hyper parses the rest): the method and
//! path routed by `router::find`, the query string, and the `Authorization` header.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let auth = parts.next();
    gaia_core::server::fuzz_request_head(method, target, auth);
});
