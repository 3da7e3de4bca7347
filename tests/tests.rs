//! End-to-end tests: real `gaia serve` and `gaia work` processes on port 0 in temp dirs,
//! talking HTTP. One binary so the build is shared; each file is one area.

mod helper;

mod adaptive;
mod api;
mod cluster;
mod dashboard;
mod db;
mod export;
mod faults;
mod k8s;
mod logs;
mod openapi;
mod queue;
mod release;
mod server;
mod slurm;
mod soak;
mod worker;
