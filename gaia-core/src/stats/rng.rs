//! The bootstrap's random numbers: PCG64 (`rand_pcg::Pcg64`, value-stable across platforms and
//! releases) seeded from the user's seed and a stream name, and whole numbers below a bound by
//! Lemire's multiply-and-reject (no modulo bias, nothing that depends on the width of `usize`).
//! So the same seed gives the same resamples, and the same interval, on every machine.

use rand_core::Rng as _;
use rand_pcg::Pcg64;

/// A seeded generator for one stream of resamples.
pub struct Rng(Pcg64);

/// FNV-1a of a name: the stream a name draws from (stable, unlike `std`'s hashers).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Rng {
    /// The generator of stream `stream` (a method's label, say) under `seed`: streams of one
    /// seed are independent, so a method's interval does not depend on which other methods are
    /// compared beside it, nor on the order they are listed in.
    pub fn new(seed: u64, stream: &str) -> Rng {
        let state = (u128::from(seed) << 64) | u128::from(fnv1a("gaia bootstrap"));
        Rng(Pcg64::new(state, u128::from(fnv1a(stream))))
    }

    /// The generator of resample `r` of stream `stream` under `seed`: each resample its own
    /// generator, so resample r is the same whoever draws it (a method's aggregates, and every
    /// pair of methods it is in), in any order, on any thread.
    pub fn for_resample(seed: u64, stream: &str, r: u64) -> Rng {
        let state = (u128::from(seed) << 64)
            | u128::from(fnv1a("gaia bootstrap") ^ r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Rng(Pcg64::new(state, u128::from(fnv1a(stream))))
    }

    /// A whole number in `0..n` (`n` ≥ 1), each equally likely.
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        let mut m = u64::from(self.0.next_u32()) * u64::from(n);
        if (m as u32) < n {
            let t = n.wrapping_neg() % n;
            while (m as u32) < t {
                m = u64::from(self.0.next_u32()) * u64::from(n);
            }
        }
        (m >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_stream_give_the_same_numbers() {
        let draw = |seed, stream| {
            let mut r = Rng::new(seed, stream);
            (0..8).map(|_| r.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, "cma_es"), draw(7, "cma_es"));
        assert_ne!(draw(7, "cma_es"), draw(8, "cma_es"));
        assert_ne!(draw(7, "cma_es"), draw(7, "openai_es"));
        // Pinned: a change of generator or of the bound's method would move every interval.
        assert_eq!(draw(0, "x"), [944, 599, 342, 489, 407, 773, 394, 656]);
    }

    #[test]
    fn draws_stay_below_the_bound_and_cover_it_evenly() {
        let mut r = Rng::new(1, "even");
        let mut seen = [0u32; 7];
        for _ in 0..70_000 {
            seen[r.below(7) as usize] += 1;
        }
        for n in seen {
            assert!((9_500..10_500).contains(&n), "{seen:?}");
        }
        assert!((0..1000).all(|_| r.below(1) == 0));
    }
}
