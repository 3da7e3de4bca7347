//! Built-in job kinds, run inside the worker with no subprocess: they show routing by kind and
//! make dispatch measurable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::stream::Signals;
use crate::model::JobKind;

/// How a built-in ended.
pub enum BuiltinEnd {
    Done(serde_json::Value),
    Failed(String),
    Cancelled,
    TimedOut,
}

/// Runs a built-in job on `input`.
pub fn run(
    kind: JobKind,
    input: &str,
    signals: &Arc<Signals>,
    timeout: Option<Duration>,
) -> BuiltinEnd {
    match kind {
        JobKind::Reverse => BuiltinEnd::Done(input.chars().rev().collect::<String>().into()),
        JobKind::Upper => BuiltinEnd::Done(input.to_uppercase().into()),
        JobKind::Hash => BuiltinEnd::Done(hex::encode(Sha256::digest(input.as_bytes())).into()),
        JobKind::Sum => {
            let mut total = 0.0f64;
            let mut all_int = true;
            for part in input
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|p| !p.is_empty())
            {
                match part.parse::<f64>() {
                    Ok(v) if v.is_finite() => {
                        all_int &= v.fract() == 0.0;
                        total += v;
                    }
                    _ => return BuiltinEnd::Failed(format!("sum: {part:?} is not a number")),
                }
            }
            if all_int && total.abs() < 9.0e15 {
                BuiltinEnd::Done(serde_json::json!(total as i64))
            } else {
                BuiltinEnd::Done(serde_json::json!(total))
            }
        }
        JobKind::Wait => {
            let secs: f64 = input.trim().parse().unwrap_or(0.0);
            let end = Instant::now() + Duration::from_secs_f64(secs.clamp(0.0, 86_400.0));
            let started = Instant::now();
            while Instant::now() < end {
                if signals.cancel.load(Ordering::Relaxed)
                    || signals.stale.load(Ordering::Relaxed)
                    || signals.give_back.load(Ordering::Relaxed)
                {
                    return BuiltinEnd::Cancelled;
                }
                if timeout.is_some_and(|t| started.elapsed() >= t) {
                    return BuiltinEnd::TimedOut;
                }
                std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
            }
            BuiltinEnd::Done(serde_json::json!(format!("waited {secs}s")))
        }
        JobKind::Experiment | JobKind::Command => {
            BuiltinEnd::Failed(format!("{kind} is not a built-in kind"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(kind: JobKind, input: &str) -> serde_json::Value {
        match run(kind, input, &Arc::new(Signals::default()), None) {
            BuiltinEnd::Done(v) => v,
            _ => panic!("{kind} {input:?} did not finish"),
        }
    }

    #[test]
    fn builtins() {
        assert_eq!(done(JobKind::Reverse, "abc"), "cba");
        assert_eq!(done(JobKind::Upper, "abc"), "ABC");
        assert_eq!(
            done(JobKind::Hash, "hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(done(JobKind::Sum, "1 2, 3"), 6);
        assert_eq!(done(JobKind::Sum, "1.5 2"), 3.5);
        assert!(matches!(
            run(JobKind::Sum, "1 x", &Arc::new(Signals::default()), None),
            BuiltinEnd::Failed(_)
        ));
    }
}
