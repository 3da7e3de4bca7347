//! The reference scores of the environments the shipped experiments know: what a random policy
//! scores and what counts as solved. `gaia compare` normalises with them, (score − random) /
//! (solved − random), so 0 is random and 1 is solved on every environment and environments can
//! be aggregated. The experiments declare them (`experiments/gaia_exp/envs.py`, printed by
//! `run_all.py --list --json`); the server cannot run Python, so this is a copy, kept equal by a
//! test (`tests/compare.rs`), as `SHIPPED_METHODS` is kept equal to the methods folder.

/// An environment's random and solved scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnvScores {
    pub name: &'static str,
    /// The mean score of a uniformly random policy (gym), or the expected fitness of a random
    /// start point with the default params (analytic objectives: `dim` 10, `x0_range` 3).
    pub random: f64,
    /// The score at which the experiments call it solved.
    pub solved: f64,
}

/// Every environment of the shipped experiments with both scores known.
pub const SHIPPED_ENVS: &[EnvScores] = &[
    EnvScores {
        name: "CartPole-v1",
        random: 24.1,
        solved: 475.0,
    },
    EnvScores {
        name: "Acrobot-v1",
        random: -499.0,
        solved: -100.0,
    },
    EnvScores {
        name: "MountainCarContinuous-v0",
        random: -33.3,
        solved: 90.0,
    },
    EnvScores {
        name: "Pendulum-v1",
        random: -1240.0,
        solved: -200.0,
    },
    EnvScores {
        name: "LunarLander-v3",
        random: -193.0,
        solved: 200.0,
    },
    EnvScores {
        name: "BipedalWalker-v3",
        random: -100.3,
        solved: 300.0,
    },
    EnvScores {
        name: "BipedalWalkerHardcore-v3",
        random: -108.1,
        solved: 300.0,
    },
    EnvScores {
        name: "sphere",
        random: -30.0,
        solved: -1e-8,
    },
    EnvScores {
        name: "rastrigin",
        random: -130.0,
        solved: -1e-8,
    },
];

/// The shipped scores of an environment (names compare case-insensitively, as `run_all.py`
/// looks them up).
pub fn shipped(env: &str) -> Option<&'static EnvScores> {
    SHIPPED_ENVS
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_env_is_solved_above_random() {
        for e in SHIPPED_ENVS {
            assert!(e.random < e.solved, "{e:?}");
        }
        assert_eq!(shipped("cartpole-v1").unwrap().solved, 475.0);
        assert!(shipped("Nope-v0").is_none());
    }
}
