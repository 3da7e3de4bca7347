//! Early stopping: when a study's configuration has shown enough to be judged, and whether it
//! goes on. Pure functions over the values recorded at a rung; the queue records them as rows
//! stream in and acts on the decision, once, on the server.
//!
//! A *rung* is a number of evaluations. A configuration's value at a rung is its metric (higher
//! is better: GAIA's convention everywhere) when its runs crossed that many evaluations; with
//! several seeds, their mean, taken once every seed has reached the rung or ended (until then
//! its seeds run on). A run that ended before a rung (stopped when solved) counts with its final
//! value, as if it had run on.
//!
//! - **ASHA** (asynchronous successive halving, Li et al. 2020, "A System for Massively Parallel
//!   Hyperparameter Tuning"): rungs at `min_evals × eta^k`. A configuration reaching rung k goes
//!   on if it is among the top ⌊n/eta⌋ of the n values rung k holds with it (the best so far
//!   always goes on; a tie does not displace a value recorded before it), else it stops.
//!   Decisions are made as values arrive, never waiting for a rung to fill: the promotion rule
//!   of the paper's Algorithm 2 (`top_k(rung, |rung|/eta)`) in its stopping form, since an
//!   experiment process cannot be paused and resumed later — "promoted" means "allowed to go
//!   on", and a configuration Algorithm 2 would hold back until the rung fills stops instead.
//!   So the first configurations to reach a rung meet little competition: submit the ones you
//!   trust first, or run one slot, when that matters.
//! - **Median** (the median stopping rule, Golovin et al. 2017, "Google Vizier"): rungs every
//!   `every` evaluations from `min_evals`; a configuration whose value is below the median of
//!   the other configurations' values at that rung stops, once `min_configs` others are there.

use crate::error::RequestError;
use crate::model::EarlyStop;
use crate::stats::quantile;

/// Rungs a rule may have at most (a bound on the state a study keeps).
pub const MAX_RUNGS: u32 = 64;

fn invalid(m: impl Into<String>) -> RequestError {
    RequestError::Invalid(m.into())
}

/// What a rung decides for a configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// It goes on (to the next rung).
    Continue,
    /// It stops: its value fell below `cut`.
    Prune { cut: f64 },
}

/// Parses a rule as `gaia submit --early-stop` takes it: `asha(metric=best_ever,
/// min_evals=5000, eta=3[, max_rungs=4])` or `median(metric=best_ever, min_evals=5000,
/// every=5000[, min_configs=3])`. Errors name the bad part.
pub fn parse(s: &str) -> Result<EarlyStop, RequestError> {
    let bad = |why: String| invalid(format!("--early-stop {s:?}: {why}"));
    let t = s.trim();
    let (name, rest) = t
        .split_once('(')
        .ok_or_else(|| bad("write asha(metric=..., min_evals=N, eta=N) or median(...)".into()))?;
    let body = rest
        .strip_suffix(')')
        .ok_or_else(|| bad("the closing ) is missing".into()))?;
    let mut args = std::collections::BTreeMap::new();
    for part in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
        if args
            .insert(k.trim().to_string(), v.trim().to_string())
            .is_some()
        {
            return Err(bad(format!("{} is given twice", k.trim())));
        }
    }
    let mut take = |key: &str| args.remove(key);
    let num = |key: &str, v: Option<String>| -> Result<Option<u64>, RequestError> {
        v.map(|v| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|_| bad(format!("{key}={v}: not a whole number")))
        })
        .transpose()
    };
    let metric = take("metric").unwrap_or_else(|| "best_ever".into());
    crate::model::validate_name("metric", &metric).map_err(|e| bad(e.to_string()))?;
    let min_evals = num("min_evals", take("min_evals"))?
        .ok_or_else(|| bad("min_evals=N is needed (the first rung)".into()))?;
    let rule = match name.trim() {
        "asha" => {
            let eta = num("eta", take("eta"))?.unwrap_or(3);
            let max_rungs = num("max_rungs", take("max_rungs"))?;
            EarlyStop::Asha {
                metric,
                min_evals,
                eta: u32::try_from(eta).map_err(|_| bad(format!("eta={eta}: too large")))?,
                max_rungs: max_rungs.map(|m| m.min(MAX_RUNGS as u64) as u32),
            }
        }
        "median" => EarlyStop::Median {
            metric,
            min_evals,
            every: num("every", take("every"))?.unwrap_or(min_evals),
            min_configs: num("min_configs", take("min_configs"))?.unwrap_or(3) as u32,
        },
        other => return Err(bad(format!("unknown rule {other:?}; use asha or median"))),
    };
    if let Some(k) = args.keys().next() {
        return Err(bad(format!("unknown setting {k:?}")));
    }
    validate(&rule).map_err(|e| bad(e.to_string()))?;
    Ok(rule)
}

/// Checks a rule's settings (also when it arrives as JSON).
pub fn validate(rule: &EarlyStop) -> Result<(), RequestError> {
    match rule {
        EarlyStop::Asha {
            min_evals,
            eta,
            max_rungs,
            metric,
        } => {
            crate::model::validate_name("metric", metric)?;
            if *min_evals == 0 {
                return Err(invalid("min_evals must be positive"));
            }
            if *eta < 2 {
                return Err(invalid(format!("eta must be at least 2, got {eta}")));
            }
            if max_rungs.is_some_and(|m| m == 0 || m > MAX_RUNGS) {
                return Err(invalid(format!("max_rungs must be 1 to {MAX_RUNGS}")));
            }
        }
        EarlyStop::Median {
            min_evals,
            every,
            metric,
            ..
        } => {
            crate::model::validate_name("metric", metric)?;
            if *min_evals == 0 || *every == 0 {
                return Err(invalid("min_evals and every must be positive"));
            }
        }
    }
    Ok(())
}

impl EarlyStop {
    /// The metric the rule judges by.
    pub fn metric(&self) -> &str {
        match self {
            EarlyStop::Asha { metric, .. } | EarlyStop::Median { metric, .. } => metric,
        }
    }

    /// Evaluations at rung `k` (0-based), or None past the last rung.
    pub fn threshold(&self, k: u32) -> Option<f64> {
        match self {
            EarlyStop::Asha {
                min_evals,
                eta,
                max_rungs,
                ..
            } => {
                if k >= max_rungs.unwrap_or(MAX_RUNGS) {
                    return None;
                }
                let t = *min_evals as f64 * (*eta as f64).powi(k as i32);
                t.is_finite().then_some(t)
            }
            EarlyStop::Median {
                min_evals, every, ..
            } => (k < MAX_RUNGS).then_some(*min_evals as f64 + k as f64 * *every as f64),
        }
    }

    /// The rungs crossed going from `before` to `after` evaluations (in order).
    pub fn crossed(&self, before: f64, after: f64) -> Vec<u32> {
        let mut out = Vec::new();
        let mut k = 0;
        while let Some(t) = self.threshold(k) {
            if t > after {
                break;
            }
            if t > before {
                out.push(k);
            }
            k += 1;
        }
        out
    }

    /// The decision at a rung for a configuration with `value`, given the values `others`
    /// recorded at that rung before it (other configurations).
    pub fn decide(&self, value: f64, others: &[f64]) -> Decision {
        let mut all: Vec<f64> = others.iter().copied().filter(|v| v.is_finite()).collect();
        if !value.is_finite() {
            // No usable value (NaN): judged as the worst.
            return match all.iter().copied().reduce(f64::min) {
                Some(cut) => Decision::Prune { cut },
                None => Decision::Continue,
            };
        }
        match self {
            EarlyStop::Asha { eta, .. } => {
                // The top ⌊n/eta⌋ of the n values the rung holds with this one (at least the
                // best so far) go on; a tie does not displace a value recorded before it.
                let n = all.len() + 1;
                let top = (n / *eta as usize).max(1);
                all.sort_by(|a, b| b.total_cmp(a));
                let better = all.iter().filter(|&&v| v >= value).count();
                if better < top {
                    Decision::Continue
                } else {
                    Decision::Prune { cut: all[top - 1] }
                }
            }
            EarlyStop::Median { min_configs, .. } => {
                if all.len() < *min_configs as usize {
                    return Decision::Continue;
                }
                all.sort_by(f64::total_cmp);
                let cut = quantile(&all, 0.5);
                if value < cut {
                    Decision::Prune { cut }
                } else {
                    Decision::Continue
                }
            }
        }
    }

    /// The rule as `--early-stop` writes it.
    pub fn describe(&self) -> String {
        match self {
            EarlyStop::Asha {
                metric,
                min_evals,
                eta,
                max_rungs,
            } => match max_rungs {
                Some(m) => format!(
                    "asha(metric={metric}, min_evals={min_evals}, eta={eta}, max_rungs={m})"
                ),
                None => format!("asha(metric={metric}, min_evals={min_evals}, eta={eta})"),
            },
            EarlyStop::Median {
                metric,
                min_evals,
                every,
                min_configs,
            } => format!(
                "median(metric={metric}, min_evals={min_evals}, every={every}, min_configs={min_configs})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asha(eta: u32) -> EarlyStop {
        EarlyStop::Asha {
            metric: "best_ever".into(),
            min_evals: 100,
            eta,
            max_rungs: Some(3),
        }
    }

    #[test]
    fn rules_parse_and_errors_name_the_bad_part() {
        assert_eq!(
            parse("asha(metric=best_ever, min_evals=5000, eta=3)").unwrap(),
            EarlyStop::Asha {
                metric: "best_ever".into(),
                min_evals: 5000,
                eta: 3,
                max_rungs: None
            }
        );
        assert_eq!(
            parse("median(min_evals=1_000)").unwrap(),
            EarlyStop::Median {
                metric: "best_ever".into(),
                min_evals: 1000,
                every: 1000,
                min_configs: 3
            }
        );
        for (bad, says) in [
            ("asha", "write asha"),
            ("asha(min_evals=5", "closing )"),
            ("asha(eta=3)", "min_evals=N is needed"),
            ("asha(min_evals=10, eta=1)", "eta must be at least 2"),
            ("asha(min_evals=x)", "min_evals=x: not a whole number"),
            ("asha(min_evals=10, speed=2)", "unknown setting \"speed\""),
            ("hyperband(min_evals=10)", "unknown rule \"hyperband\""),
            ("asha(min_evals=10, min_evals=20)", "given twice"),
            ("asha(min_evals=10, metric=../x)", "invalid metric"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let r = parse("asha(metric=mean, min_evals=50, eta=4, max_rungs=2)").unwrap();
        assert_eq!(parse(&r.describe()).unwrap(), r);
    }

    #[test]
    fn rungs_are_where_the_rule_says() {
        let r = asha(3);
        assert_eq!(
            (0..4).map(|k| r.threshold(k)).collect::<Vec<_>>(),
            [Some(100.0), Some(300.0), Some(900.0), None]
        );
        assert_eq!(r.crossed(0.0, 99.0), Vec::<u32>::new());
        assert_eq!(r.crossed(0.0, 100.0), [0]);
        assert_eq!(r.crossed(100.0, 1000.0), [1, 2]);
        assert_eq!(r.crossed(900.0, 1e9), Vec::<u32>::new());
        let m = parse("median(min_evals=10, every=5)").unwrap();
        assert_eq!(m.crossed(12.0, 26.0), [1, 2, 3]);
    }

    /// The asynchronous promotions of ASHA (Algorithm 2, stopping form), decided by hand: eta 3,
    /// configurations arriving at rung 0 one at a time with the values below. A configuration
    /// goes on iff it is among the top ⌊n/3⌋ (at least 1) of the n values the rung then holds.
    #[test]
    fn asha_decides_each_arrival_against_what_the_rung_holds_so_far() {
        let r = asha(3);
        let arrivals = [5.0, 1.0, 9.0, 4.0, 8.0, 10.0, 2.0];
        let mut rung: Vec<f64> = Vec::new();
        let mut decisions = Vec::new();
        for v in arrivals {
            decisions.push(matches!(r.decide(v, &rung), Decision::Continue));
            rung.push(v);
        }
        // 5: n 1, top 1 → on. 1: n 2, top 1 (5 is better) → stop. 9: n 3, top 1, the best → on.
        // 4: n 4, top 1 → stop. 8: n 5, top 1 (9 better) → stop. 10: n 6, top 2, the best →
        // on. 2: n 7, top 2 → stop, needing to beat 9.
        assert_eq!(decisions, [true, false, true, false, false, true, false]);
        match r.decide(2.0, &rung[..6]) {
            Decision::Prune { cut } => assert_eq!(cut, 9.0),
            d => panic!("{d:?}"),
        }
        // A tie does not displace the value recorded before it; NaN is judged the worst.
        assert_eq!(r.decide(5.0, &[]), Decision::Continue);
        assert_eq!(r.decide(5.0, &[5.0]), Decision::Prune { cut: 5.0 });
        assert_eq!(
            r.decide(5.0, &[1.0, 5.0, 7.0, 0.0, -1.0]),
            Decision::Prune { cut: 5.0 }
        );
        assert_eq!(
            r.decide(6.0, &[1.0, 5.0, 7.0, 0.0, -1.0]),
            Decision::Continue
        );
        assert!(matches!(r.decide(f64::NAN, &[1.0]), Decision::Prune { .. }));
        assert_eq!(r.decide(f64::NAN, &[]), Decision::Continue);
    }

    #[test]
    fn the_median_rule_waits_for_enough_others_then_cuts_at_their_median() {
        let m = parse("median(min_evals=10, min_configs=3)").unwrap();
        assert_eq!(m.decide(0.0, &[5.0, 6.0]), Decision::Continue);
        assert_eq!(
            m.decide(4.0, &[5.0, 6.0, 7.0]),
            Decision::Prune { cut: 6.0 }
        );
        assert_eq!(m.decide(6.0, &[5.0, 6.0, 7.0]), Decision::Continue);
    }
}
