//! Where the lab's compute lives: workers inside batch schedulers and orchestrators.
//!
//! Pure decisions an embedder needs as much as `gaia` does; the commands themselves (`sbatch`,
//! `squeue`, `scancel`) are run by the caller, except the one `squeue` call a worker makes to
//! learn its own end ([`allocation::squeue_end`]).
//!
//! | module | owns |
//! |---|---|
//! | [`allocation`] | a worker's allocation end (`--deadline`, `SLURM_JOB_END_TIME`, `squeue`), the scheduler it runs under, what it does as the end nears ([`allocation::EndPolicy`]) |
//! | [`fit`] | a job's expected duration from its study's measured evals/s; whether it fits the time a worker has left |
//! | [`slurm`] | the sbatch array script ([`slurm::render_script`]); reading `squeue` and `sbatch` output |
//! | [`autoscale`] | how many tasks to submit or cancel from the queue's depth ([`autoscale::plan`]) |
//!
//! Docs for users: `docs/CLUSTER.md`.

pub mod allocation;
pub mod autoscale;
pub mod fit;
pub mod slurm;
