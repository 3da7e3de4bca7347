#![no_main]
//! The sweep grammar as typed on the command line and in the dashboard: lists, seeds (ranges
//! included), fixed params and swept params. Never a panic; a parsed seed range is bounded.
use gaia_core::study::{parse_list, parse_param, parse_param_sweep, parse_seeds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_list("--method", &text);
    if let Ok(seeds) = parse_seeds("--seeds", &text) {
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), seeds.len(), "a seed twice from {text:?}");
    }
    let _ = parse_param(&text);
    let _ = parse_param_sweep(&text);
});
