//! Which configurations a study tries: search spaces and the samplers that draw from them. Pure
//! functions: the same space, sampler and seed give the same configurations on every machine,
//! whatever the number of workers (the queue draws them once, inside its single writer).
//!
//! A space is a list of [`ParamAxis`]: each either a list of values (`a,b,c`, `16..64`,
//! `choice(...)`) or a range to sample ([`SampleRange`]: `uniform(a,b)`, `loguniform(a,b)`,
//! `int(a,b)`). Samplers:
//!
//! - `grid`: every combination of the value lists (ranges are refused: they need a sampler);
//! - `random`: independent uniform draws (log-uniform for `loguniform`), from a seeded ChaCha
//!   generator;
//! - `sobol`: a scrambled Sobol sequence (`sobol_burley`, Owen-scrambled by the seed): spreads
//!   few samples evenly over the space;
//! - `tpe`: model-based, Bergstra et al. 2011 (the maintained `tpe` crate: one univariate
//!   Tree-structured Parzen Estimator per parameter), proposing one configuration at a time from
//!   the scores of the configurations so far; random for the first [`TPE_STARTUP`].
//!
//! No configuration is drawn twice: a draw equal to one already made is drawn again, and a
//! space with fewer distinct configurations than asked for is an error saying so.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngExt as _, SeedableRng as _};
use serde_json::Value;

use crate::error::RequestError;
use crate::model::{ParamAxis, SampleRange, Sampler};

/// One configuration: a value per parameter.
pub type Config = BTreeMap<String, Value>;

/// Configurations `tpe` draws at random before its model has anything to learn from (as
/// Optuna's default).
pub const TPE_STARTUP: usize = 10;

/// Candidates TPE scores per proposal (the `tpe` crate's default).
const TPE_CANDIDATES: usize = 24;

/// Draws that may repeat an earlier configuration before the space counts as used up.
const MAX_REDRAWS: usize = 1000;

fn invalid(m: impl Into<String>) -> RequestError {
    RequestError::Invalid(m.into())
}

/// The number of distinct configurations of a space, when every axis is a list of values
/// (None: some axis is a continuous range, or the count overflows).
pub fn discrete_size(space: &[ParamAxis]) -> Option<u64> {
    let mut n: u64 = 1;
    for axis in space {
        let k = match &axis.range {
            None => axis.values.len() as u64,
            Some(SampleRange::Int { low, high }) => (high - low + 1) as u64,
            Some(_) => return None,
        };
        n = n.checked_mul(k)?;
    }
    Some(n)
}

/// The value of an axis at `u` in [0, 1): the unit interval mapped onto the axis (uniformly,
/// log-uniformly, onto its integers or its values).
pub fn value_at(axis: &ParamAxis, u: f64) -> Value {
    let u = u.clamp(0.0, 1.0 - f64::EPSILON);
    match &axis.range {
        Some(SampleRange::Uniform { low, high }) => Value::from(low + u * (high - low)),
        Some(SampleRange::LogUniform { low, high }) => {
            Value::from((low.ln() + u * (high.ln() - low.ln())).exp())
        }
        Some(SampleRange::Int { low, high }) => {
            let span = (high - low + 1) as f64;
            Value::from((*low + (u * span).floor() as i64).min(*high))
        }
        None => {
            let i = ((u * axis.values.len() as f64) as usize).min(axis.values.len() - 1);
            axis.values[i].clone()
        }
    }
}

/// Canonical text of a configuration (its key: equal configurations, equal keys).
pub fn config_key(c: &Config) -> String {
    serde_json::to_string(c).expect("a configuration serializes")
}

/// The `n` configurations a `random` or `sobol` sampler draws from `space` with `seed`,
/// distinct, in draw order. `taken` are keys of configurations drawn before (another
/// submission of the study), never drawn again.
pub fn sample(
    space: &[ParamAxis],
    sampler: Sampler,
    n: u64,
    seed: u64,
    taken: &BTreeSet<String>,
) -> Result<Vec<Config>, RequestError> {
    if let Some(size) = discrete_size(space) {
        let left = size.saturating_sub(taken.len() as u64);
        if n > left {
            return Err(invalid(format!(
                "the search space has {size} distinct configurations ({left} not tried yet); \
                 {n} samples would repeat one: ask for at most {left}"
            )));
        }
    }
    let mut seen = taken.clone();
    let mut out = Vec::with_capacity(n as usize);
    let mut rng = rand::rngs::ChaCha12Rng::seed_from_u64(seed);
    let mut index: u32 = 0;
    let mut redraws = 0;
    while (out.len() as u64) < n {
        let config: Config = match sampler {
            Sampler::Random => space
                .iter()
                .map(|a| (a.key.clone(), value_at(a, rng.random::<f64>())))
                .collect(),
            Sampler::Sobol => {
                if index >= 1 << 16 {
                    return Err(invalid("sobol draws at most 65,536 configurations"));
                }
                let scramble = (seed ^ (seed >> 32)) as u32;
                let c = space
                    .iter()
                    .enumerate()
                    .map(|(d, a)| {
                        let u = sobol_burley::sample(index, d as u32, scramble) as f64;
                        (a.key.clone(), value_at(a, u))
                    })
                    .collect();
                index += 1;
                c
            }
            other => {
                return Err(invalid(format!(
                    "the {other} sampler does not draw configurations up front"
                )));
            }
        };
        if seen.insert(config_key(&config)) {
            out.push(config);
            redraws = 0;
        } else {
            redraws += 1;
            if redraws > MAX_REDRAWS {
                return Err(invalid(format!(
                    "the search space ran out of new configurations after {} samples",
                    out.len()
                )));
            }
        }
    }
    Ok(out)
}

/// The next configuration TPE proposes, from the configurations scored so far (`history`:
/// configuration and score, higher is better) and those still running (`pending`, never
/// proposed again). Deterministic: `seed` and `index` (how many it proposed before) fix the
/// random draws, and the history is taken in the order given. Random while the history has
/// fewer than [`TPE_STARTUP`] scores.
pub fn propose_tpe(
    space: &[ParamAxis],
    history: &[(Config, f64)],
    pending: &[Config],
    seed: u64,
    index: u64,
) -> Result<Config, RequestError> {
    let mut taken: BTreeSet<String> = history.iter().map(|(c, _)| config_key(c)).collect();
    taken.extend(pending.iter().map(config_key));
    if let Some(size) = discrete_size(space)
        && taken.len() as u64 >= size
    {
        return Err(invalid(format!(
            "the search space's {size} configurations have all been tried"
        )));
    }
    // One stream per proposal: proposal k is the same whatever happened to proposal k - 1.
    let mut rng =
        rand::rngs::ChaCha12Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let scored: Vec<&(Config, f64)> = history.iter().filter(|(_, s)| s.is_finite()).collect();
    for _ in 0..MAX_REDRAWS {
        let config: Config = if scored.len() < TPE_STARTUP {
            space
                .iter()
                .map(|a| (a.key.clone(), value_at(a, rng.random::<f64>())))
                .collect()
        } else {
            let mut c = Config::new();
            for axis in space {
                c.insert(axis.key.clone(), tpe_draw(axis, &scored, &mut rng)?);
            }
            c
        };
        if !taken.contains(&config_key(&config)) {
            return Ok(config);
        }
    }
    Err(invalid("TPE kept proposing configurations already tried"))
}

/// One parameter's TPE draw: a univariate estimator over the axis (log space for
/// `loguniform`, category indices for value lists), told every score (negated: the crate
/// minimises).
fn tpe_draw(
    axis: &ParamAxis,
    scored: &[&(Config, f64)],
    rng: &mut rand::rngs::ChaCha12Rng,
) -> Result<Value, RequestError> {
    let err = |e: &dyn std::fmt::Display| invalid(format!("TPE on {}: {e}", axis.key));
    // The axis as a real interval, and a configuration's value as a point in it.
    let (low, high, categorical) = match &axis.range {
        Some(SampleRange::Uniform { low, high }) => (*low, *high, false),
        Some(SampleRange::LogUniform { low, high }) => (low.ln(), high.ln(), false),
        Some(SampleRange::Int { low, high }) => (*low as f64, *high as f64 + 1.0, false),
        None => (0.0, axis.values.len() as f64, true),
    };
    let point = |v: &Value| -> Option<f64> {
        match &axis.range {
            Some(SampleRange::LogUniform { .. }) => v.as_f64().map(f64::ln),
            Some(SampleRange::Int { .. }) => v.as_f64().map(|x| x + 0.5),
            Some(_) => v.as_f64(),
            None => axis.values.iter().position(|x| x == v).map(|i| i as f64),
        }
    };
    let range = tpe::range(low, high).map_err(|e| err(&e))?;
    let estimator = if categorical {
        tpe::histogram_estimator()
    } else {
        tpe::parzen_estimator()
    };
    let mut optim = tpe::TpeOptimizerBuilder::new()
        .candidates(TPE_CANDIDATES)
        .build(estimator, range)
        .map_err(|e| err(&e))?;
    for (config, score) in scored {
        if let Some(p) = config.get(&axis.key).and_then(point)
            && range.contains(p)
        {
            optim.tell(p, -score).map_err(|e| err(&e))?;
        }
    }
    let p = optim.ask(rng).map_err(|e| err(&e))?;
    Ok(match &axis.range {
        Some(SampleRange::Uniform { low, high }) => Value::from(p.clamp(*low, *high)),
        Some(SampleRange::LogUniform { low, high }) => Value::from(p.exp().clamp(*low, *high)),
        Some(SampleRange::Int { low, high }) => Value::from((p.floor() as i64).clamp(*low, *high)),
        None => {
            let i = (p.floor().max(0.0) as usize).min(axis.values.len() - 1);
            axis.values[i].clone()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::parse_param_sweep;

    fn space(specs: &[&str]) -> Vec<ParamAxis> {
        specs
            .iter()
            .map(|s| parse_param_sweep(s).unwrap())
            .collect()
    }

    #[test]
    fn samplers_are_deterministic_in_their_seed() {
        let s = space(&[
            "lr=loguniform(1e-3,1e-1)",
            "sigma=uniform(0.02,0.5)",
            "pop_size=choice(32,64,128)",
        ]);
        for sampler in [Sampler::Random, Sampler::Sobol] {
            let a = sample(&s, sampler, 40, 7, &BTreeSet::new()).unwrap();
            let b = sample(&s, sampler, 40, 7, &BTreeSet::new()).unwrap();
            let c = sample(&s, sampler, 40, 8, &BTreeSet::new()).unwrap();
            assert_eq!(a, b, "{sampler}: same seed, same configurations");
            assert_ne!(a, c, "{sampler}: another seed, other configurations");
            let keys: BTreeSet<String> = a.iter().map(config_key).collect();
            assert_eq!(keys.len(), 40, "no duplicates");
            for cfg in &a {
                let lr = cfg["lr"].as_f64().unwrap();
                assert!((1e-3..=1e-1).contains(&lr), "{lr}");
                let sigma = cfg["sigma"].as_f64().unwrap();
                assert!((0.02..=0.5).contains(&sigma), "{sigma}");
                assert!([32, 64, 128].contains(&cfg["pop_size"].as_i64().unwrap()));
            }
        }
        // Log-uniform: about as many draws per decade.
        let lr = space(&["lr=loguniform(1e-4,1e-0)"]);
        let draws = sample(&lr, Sampler::Random, 4000, 1, &BTreeSet::new()).unwrap();
        let low_decade = draws
            .iter()
            .filter(|c| c["lr"].as_f64().unwrap() < 1e-3)
            .count();
        assert!((800..1200).contains(&low_decade), "{low_decade}");
    }

    #[test]
    fn a_discrete_space_is_never_sampled_twice_and_says_when_it_is_too_small() {
        let s = space(&["a=1,2,3", "b=int(1,2)"]);
        assert_eq!(discrete_size(&s), Some(6));
        let all = sample(&s, Sampler::Random, 6, 3, &BTreeSet::new()).unwrap();
        let keys: BTreeSet<String> = all.iter().map(config_key).collect();
        assert_eq!(keys.len(), 6);
        let e = sample(&s, Sampler::Random, 7, 3, &BTreeSet::new()).unwrap_err();
        assert!(e.to_string().contains("6 distinct configurations"), "{e}");
        // Those taken before (an earlier submission) are not drawn again.
        let first: BTreeSet<String> = all[..4].iter().map(config_key).collect();
        let rest = sample(&s, Sampler::Sobol, 2, 9, &first).unwrap();
        assert!(rest.iter().all(|c| !first.contains(&config_key(c))));
        assert!(sample(&s, Sampler::Sobol, 3, 9, &first).is_err());
    }

    #[test]
    fn tpe_is_deterministic_and_learns_where_the_good_configurations_are() {
        let s = space(&["x=uniform(-5,5)", "k=choice(1,10,100)"]);
        let f = |c: &Config| -> f64 {
            let x = c["x"].as_f64().unwrap();
            let k = c["k"].as_f64().unwrap();
            -(x - 2.0).powi(2) - k / 10.0
        };
        let run = |seed: u64| -> Vec<(Config, f64)> {
            let mut history: Vec<(Config, f64)> = Vec::new();
            for i in 0..60 {
                let c = propose_tpe(&s, &history, &[], seed, i).unwrap();
                let v = f(&c);
                history.push((c, v));
            }
            history
        };
        let a = run(11);
        assert_eq!(a, run(11), "same seed and history, same proposals");
        // After its random start it concentrates near x = 2, k = 1.
        let late: Vec<&(Config, f64)> = a[40..].iter().collect();
        let near = late
            .iter()
            .filter(|(c, _)| (c["x"].as_f64().unwrap() - 2.0).abs() < 1.5)
            .count();
        assert!(
            near >= 12,
            "only {near} of 20 late proposals near the optimum"
        );
        let best = a.iter().map(|(_, v)| *v).fold(f64::NEG_INFINITY, f64::max);
        let best_random = a[..TPE_STARTUP]
            .iter()
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(best > best_random, "{best} vs {best_random}");
        // Never a configuration already tried or pending.
        let small = space(&["a=1,2"]);
        let one = propose_tpe(&small, &[], &[], 1, 0).unwrap();
        let other = propose_tpe(&small, &[], std::slice::from_ref(&one), 1, 1).unwrap();
        assert_ne!(one, other);
        assert!(propose_tpe(&small, &[(one, 1.0)], &[other], 1, 2).is_err());
    }
}
