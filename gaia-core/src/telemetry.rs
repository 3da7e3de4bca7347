//! Worker telemetry over time, as pure functions: the utilisation each heartbeat carries (CPU,
//! RAM, per GPU utilisation, memory and temperature) folded into downsampled time series with
//! a fixed number of points per tier, so what is kept per worker is bounded however long the
//! server runs.
//!
//! Each tier averages the raw heartbeat readings over its step ([`TIERS`]: 5 s for an hour,
//! 1 min for a day, 10 min for a month). A tier keeps at most `points` points per worker: the
//! store writes point `i` of a tier into slot `i % points` (a ring), so old points are
//! overwritten in place and nothing has to be deleted.
//!
//! Bound: a point is the bucket's start time, CPU and RAM (postcard, ≈ 15 bytes) plus ≈ 18
//! bytes per GPU, under a key of the worker id, tier and slot (≈ 25 bytes). With 6,624 points
//! over the three tiers that is ≈ 265 KB per worker without a GPU and ≈ 120 KB more per GPU,
//! before the B-tree's overhead (measured: `store::telemetry` tests).
//!
//! Heartbeats never write: [`Aggregator::record`] folds a reading into memory and returns the
//! points that closed, which the queue buffers and writes in batches.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{Millis, Usage};

/// One resolution of the telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// `5s`, `1m`, `10m`.
    pub name: &'static str,
    /// The step between two points, in milliseconds.
    pub step_ms: u64,
    /// Points kept per worker (step × points = the span it covers).
    pub points: u64,
}

/// The tiers, finest first: 5 s for an hour, 1 min for a day, 10 min for 31 days.
pub const TIERS: [Tier; 3] = [
    Tier {
        name: "5s",
        step_ms: 5_000,
        points: 720,
    },
    Tier {
        name: "1m",
        step_ms: 60_000,
        points: 1_440,
    },
    Tier {
        name: "10m",
        step_ms: 600_000,
        points: 4_464,
    },
];

/// A span someone asks to see, and the tier that serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// The last hour, from the 5 s tier.
    Hour,
    /// The last day, from the 1 min tier.
    Day,
    /// The last week, from the 10 min tier.
    Week,
    /// The last 31 days, from the 10 min tier.
    Month,
}

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        match s {
            "hour" | "1h" => Ok(Span::Hour),
            "day" | "1d" | "24h" => Ok(Span::Day),
            "week" | "7d" => Ok(Span::Week),
            "month" | "30d" => Ok(Span::Month),
            _ => Err(format!("unknown span {s:?}; use hour, day, week or month")),
        }
    }
}

impl Span {
    /// How far back it reaches, in milliseconds.
    pub fn millis(self) -> u64 {
        match self {
            Span::Hour => 3_600_000,
            Span::Day => 86_400_000,
            Span::Week => 7 * 86_400_000,
            Span::Month => 31 * 86_400_000,
        }
    }

    /// Which tier (index into [`TIERS`]) answers it: the finest that covers it.
    pub fn tier(self) -> usize {
        match self {
            Span::Hour => 0,
            Span::Day => 1,
            Span::Week | Span::Month => 2,
        }
    }
}

/// One GPU's readings averaged over a point's step (None: the driver gave none in it).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct GpuPoint {
    /// Percent busy.
    pub utilization: Option<f32>,
    /// MiB in use.
    pub memory_used_mb: Option<u32>,
    /// MiB on the card.
    pub memory_total_mb: Option<u32>,
    /// Degrees Celsius.
    pub temperature_c: Option<f32>,
}

/// One point of a worker's telemetry: the means over `[at, at + step)`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// Start of the step, ms since the epoch.
    pub at: Millis,
    /// Percent of all cores busy.
    pub cpu_percent: f32,
    /// Percent of the memory in use.
    pub memory_percent: f32,
    /// Per GPU, in the order the worker reports them.
    pub gpus: Vec<GpuPoint>,
}

/// A running mean of an optional reading.
#[derive(Clone, Copy, Debug, Default)]
struct Mean {
    sum: f64,
    n: u32,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }
    fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

#[derive(Clone, Debug, Default)]
struct GpuAcc {
    util: Mean,
    used: Mean,
    total: Mean,
    temp: Mean,
}

/// The open bucket of one tier.
#[derive(Clone, Debug, Default)]
struct Bucket {
    index: u64,
    n: u32,
    cpu: Mean,
    mem: Mean,
    gpus: Vec<GpuAcc>,
}

impl Bucket {
    fn add(&mut self, u: &Usage) {
        self.n += 1;
        self.cpu.add(Some(u.cpu_percent as f64));
        self.mem.add(Some(u.memory_percent as f64));
        let n = u.gpus.len().max(u.gpu_percent.len());
        if self.gpus.len() < n {
            self.gpus.resize(n, GpuAcc::default());
        }
        for (i, acc) in self.gpus.iter_mut().enumerate().take(n) {
            match u.gpus.get(i) {
                Some(g) => {
                    acc.util.add(g.utilization.map(f64::from));
                    acc.used.add(g.memory_used_mb.map(|v| v as f64));
                    acc.total.add(g.memory_total_mb.map(|v| v as f64));
                    acc.temp.add(g.temperature_c.map(f64::from));
                }
                // An older worker: utilisation only.
                None => acc.util.add(u.gpu_percent.get(i).map(|v| *v as f64)),
            }
        }
    }

    fn point(&self, step_ms: u64) -> Point {
        Point {
            at: self.index * step_ms,
            cpu_percent: self.cpu.get().unwrap_or(0.0) as f32,
            memory_percent: self.mem.get().unwrap_or(0.0) as f32,
            gpus: self
                .gpus
                .iter()
                .map(|g| GpuPoint {
                    utilization: g.util.get().map(|v| v as f32),
                    memory_used_mb: g.used.get().map(|v| v.round() as u32),
                    memory_total_mb: g.total.get().map(|v| v.round() as u32),
                    temperature_c: g.temp.get().map(|v| v as f32),
                })
                .collect(),
        }
    }
}

/// A closed point, ready to store: whose, which tier.
#[derive(Clone, Debug, PartialEq)]
pub struct Closed {
    /// The worker's id.
    pub worker: String,
    /// Index into [`TIERS`].
    pub tier: usize,
    pub point: Point,
}

/// Folds heartbeat readings into the tiers' open buckets, in memory.
#[derive(Default, Debug)]
pub struct Aggregator {
    open: HashMap<String, [Option<Bucket>; 3]>,
}

impl Aggregator {
    /// Adds a reading taken at `at`; returns the points it closed (a bucket closes when a
    /// reading of a later step arrives, or at [`Aggregator::close_due`]).
    pub fn record(&mut self, worker: &str, at: Millis, usage: &Usage) -> Vec<Closed> {
        let mut closed = Vec::new();
        let tiers = match self.open.get_mut(worker) {
            Some(t) => t,
            None => self.open.entry(worker.to_string()).or_default(),
        };
        for (t, tier) in TIERS.iter().enumerate() {
            let index = at / tier.step_ms;
            match &mut tiers[t] {
                Some(b) if b.index == index => b.add(usage),
                // A reading from before the open bucket (a clock step back) is dropped.
                Some(b) if b.index > index => {}
                slot => {
                    if let Some(old) = slot.take() {
                        closed.push(Closed {
                            worker: worker.to_string(),
                            tier: t,
                            point: old.point(tier.step_ms),
                        });
                    }
                    let mut b = Bucket {
                        index,
                        ..Bucket::default()
                    };
                    b.add(usage);
                    *slot = Some(b);
                }
            }
        }
        closed
    }

    /// Closes every bucket whose step ended a whole step before `now` (a worker that went
    /// silent; the step of grace lets a heartbeat that was under way still count), and
    /// forgets workers with nothing open.
    pub fn close_due(&mut self, now: Millis) -> Vec<Closed> {
        let mut closed = Vec::new();
        for (worker, tiers) in self.open.iter_mut() {
            for (t, tier) in TIERS.iter().enumerate() {
                if let Some(b) = &tiers[t]
                    && (b.index + 2) * tier.step_ms <= now
                {
                    closed.push(Closed {
                        worker: worker.clone(),
                        tier: t,
                        point: b.point(tier.step_ms),
                    });
                    tiers[t] = None;
                }
            }
        }
        self.open.retain(|_, t| t.iter().any(Option::is_some));
        closed
    }

    /// The open (not yet closed) point of a worker's tier, if any: the newest readings.
    pub fn open_point(&self, worker: &str, tier: usize) -> Option<Point> {
        let b = self.open.get(worker)?.get(tier)?.as_ref()?;
        Some(b.point(TIERS[tier].step_ms))
    }

    /// Drops a worker's open buckets (it was forgotten).
    pub fn forget(&mut self, worker: &str) {
        self.open.remove(worker);
    }
}

/// The ring slot point `at` of `tier` is stored in.
pub fn slot(tier: usize, at: Millis) -> u32 {
    let t = &TIERS[tier];
    ((at / t.step_ms) % t.points) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GpuUsage;

    fn usage(cpu: f32, gpu: Option<f32>) -> Usage {
        Usage {
            cpu_percent: cpu,
            memory_percent: 50.0,
            gpu_percent: Vec::new(),
            gpus: vec![GpuUsage {
                index: 0,
                utilization: gpu,
                memory_used_mb: Some(1000),
                memory_total_mb: Some(8000),
                temperature_c: Some(60.0),
                error: None,
            }],
        }
    }

    #[test]
    fn readings_are_averaged_per_step_and_gaps_stay_gaps() {
        let mut a = Aggregator::default();
        let t0 = 1_000_000_000_000 - 1_000_000_000_000 % 600_000;
        // Two readings in the first 5 s step, one in the next: the first step closes at the
        // third reading with the mean of the two.
        assert!(a.record("w", t0, &usage(10.0, Some(20.0))).is_empty());
        assert!(a.record("w", t0 + 2_000, &usage(30.0, None)).is_empty());
        let closed = a.record("w", t0 + 5_000, &usage(50.0, Some(40.0)));
        assert_eq!(closed.len(), 1);
        let p = &closed[0].point;
        assert_eq!((closed[0].tier, p.at), (0, t0));
        assert_eq!(p.cpu_percent, 20.0);
        // A GPU reading the driver did not give is not a zero: the mean of what came.
        assert_eq!(p.gpus[0].utilization, Some(20.0));
        assert_eq!(p.gpus[0].memory_total_mb, Some(8000));
        // Minutes later: the 5 s and 1 min buckets close, the 10 min one stays open.
        let closed = a.record("w", t0 + 125_000, &usage(0.0, Some(0.0)));
        let tiers: Vec<usize> = closed.iter().map(|c| c.tier).collect();
        assert_eq!(tiers, vec![0, 1]);
        assert_eq!(
            closed[1].point.cpu_percent, 30.0,
            "mean of the first minute"
        );
        // Silence: close_due closes what ended.
        assert_eq!(
            a.close_due(t0 + 600_000).len(),
            2,
            "the 10 min step has its grace"
        );
        let closed = a.close_due(t0 + 1_200_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].point.at, t0);
        assert!((closed[0].point.cpu_percent - 22.5).abs() < 1e-4);
        assert!(a.open_point("w", 0).is_none());
    }

    #[test]
    fn slots_wrap_at_each_tiers_length() {
        for (t, tier) in TIERS.iter().enumerate() {
            assert_eq!(slot(t, 0), 0);
            assert_eq!(slot(t, tier.step_ms * tier.points), 0);
            assert_eq!(slot(t, tier.step_ms * (tier.points + 3)), 3);
        }
        assert_eq!(TIERS[0].step_ms * TIERS[0].points, Span::Hour.millis());
        assert_eq!(TIERS[1].step_ms * TIERS[1].points, Span::Day.millis());
        assert!(TIERS[2].step_ms * TIERS[2].points >= Span::Month.millis());
        assert_eq!("week".parse::<Span>().unwrap().tier(), 2);
        assert!("year".parse::<Span>().is_err());
    }
}
