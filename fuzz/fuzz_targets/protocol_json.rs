#![no_main]
//! Every request body the server decodes from JSON, and the checks it runs on them next: the
//! first byte picks the type, the rest is the body. Decoding and validating never panic.
use gaia_core::model::JobSpec;
use gaia_core::protocol::*;
use libfuzzer_sys::fuzz_target;

fn json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Option<T> {
    serde_json::from_slice(b).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => {
            if let Some(s) = json::<JobSpec>(body) {
                let _ = s.normalize();
            }
        }
        1 => {
            if let Some(b) = json::<SubmitBatch>(body) {
                for s in b.jobs {
                    let _ = s.normalize();
                }
            }
        }
        2 => {
            let _ = json::<RowBatch>(body);
        }
        3 => {
            let _ = json::<LogBatch>(body);
        }
        4 => {
            let _ = json::<CompleteRequest>(body);
        }
        5 => {
            let _ = json::<RequeueRequest>(body);
        }
        6 => {
            if let Some(s) = json::<StudySubmit>(body)
                && let Ok(d) = gaia_core::study::Definition::of(&s)
                && d.job_count() <= 10_000
            {
                let _ = d.expand();
            }
        }
        7 => {
            let _ = json::<TokenCreate>(body);
        }
        8 => {
            if let Some(r) = json::<RegisterRequest>(body) {
                let _ = r.hardware.validate();
            }
        }
        9 => {
            if let Some(h) = json::<HeartbeatRequest>(body) {
                let _ = h.usage.validate();
            }
        }
        10 => {
            let _ = json::<ClaimRequest>(body);
        }
        _ => {
            let _ = json::<gaia_core::release::UpdateReport>(body);
        }
    }
});
