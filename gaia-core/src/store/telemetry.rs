//! Worker telemetry: each worker's utilisation over time, downsampled into tiers of fixed
//! length (see [`crate::telemetry`] for the tiers and the bound in bytes per worker).

use redb::TableDefinition;

use super::{Reader, Tx};
use crate::error::StoreError;
use crate::model::Millis;
use crate::telemetry::{Closed, Point, TIERS, slot};

/// (worker id, tier, ring slot) → the point, postcard. A tier's slot `i` holds the newest
/// point whose step number ≡ i (mod the tier's length), so each worker keeps at most
/// `TIERS[t].points` entries per tier: old points are overwritten, never piled up.
pub(crate) const TELEMETRY: TableDefinition<(&str, u8, u32), &[u8]> =
    TableDefinition::new("telemetry");

fn decode(bytes: &[u8]) -> Result<Point, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: "telemetry point",
        detail: e.to_string(),
    })
}

impl Tx<'_> {
    /// Stores closed points (each into its ring slot).
    pub fn save_telemetry(&mut self, points: &[Closed]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(64);
        for c in points {
            buf.clear();
            buf = postcard::to_extend(&c.point, buf).expect("points encode");
            let key = (c.worker.as_str(), c.tier as u8, slot(c.tier, c.point.at));
            self.telemetry.open_mut()?.insert(key, buf.as_slice())?;
        }
        Ok(())
    }

    /// Deletes every point of a worker (it was forgotten).
    pub fn delete_telemetry(&mut self, worker: &str) -> Result<u64, StoreError> {
        let mut n = 0;
        for t in 0..TIERS.len() as u8 {
            let gone = self
                .telemetry
                .open_mut()?
                .extract_from_if((worker, t, 0)..=(worker, t, u32::MAX), |_, _| true)?;
            for entry in gone {
                entry?;
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Reader {
    /// The points of a worker's tier from `since` on, oldest first (slots still holding a
    /// point from an earlier lap of the ring are left out).
    pub fn telemetry(
        &self,
        worker: &str,
        tier: usize,
        since: Millis,
    ) -> Result<Vec<Point>, StoreError> {
        let t = tier as u8;
        let mut out = Vec::new();
        for entry in self
            .telemetry
            .open()?
            .range((worker, t, 0)..=(worker, t, u32::MAX))?
        {
            let (_, v) = entry?;
            let p = decode(v.value())?;
            if p.at >= since {
                out.push(p);
            }
        }
        out.sort_by_key(|p| p.at);
        Ok(out)
    }

    /// Entries stored for a worker, per tier (for tests and the bound).
    pub fn telemetry_entries(&self, worker: &str) -> Result<[u64; 3], StoreError> {
        let mut out = [0; 3];
        for (t, n) in out.iter_mut().enumerate() {
            let t = t as u8;
            for entry in self
                .telemetry
                .open()?
                .range((worker, t, 0)..=(worker, t, u32::MAX))?
            {
                entry?;
                *n += 1;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{GpuUsage, Usage};
    use crate::store::Store;
    use crate::telemetry::{Aggregator, TIERS};

    /// A worker with 2 GPUs heart-beating every 5 s for 40 simulated days: every tier stays at
    /// its length, the file stops growing once the rings are full, and the hour tier holds
    /// the last hour at 5 s.
    #[test]
    fn retention_is_bounded_however_long_the_server_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut agg = Aggregator::default();
        let start: u64 = 1_800_000_000_000;
        let usage = |i: u64| Usage {
            cpu_percent: (i % 100) as f32,
            memory_percent: 40.0,
            gpu_percent: vec![],
            gpus: (0..2)
                .map(|g| GpuUsage {
                    index: g,
                    utilization: Some(((i + g as u64) % 100) as f32),
                    memory_used_mb: Some(20_000),
                    memory_total_mb: Some(81_920),
                    temperature_c: Some(55.0),
                    error: None,
                })
                .collect(),
        };
        let beats = 40 * 86_400 / 5;
        let mut pending = Vec::new();
        let mut size_after_31_days = 0;
        let mut now = start;
        for i in 0..beats {
            now = start + i * 5_000;
            pending.extend(agg.record("w-1", now, &usage(i)));
            if pending.len() >= 20_000 || i + 1 == beats {
                let batch = std::mem::take(&mut pending);
                store
                    .write_blocking(move |tx| Ok(tx.save_telemetry(&batch)?))
                    .unwrap();
            }
            if i == 31 * 86_400 / 5 {
                size_after_31_days = std::fs::metadata(store.path()).unwrap().len();
            }
        }
        let read = store.read().unwrap();
        let entries = read.telemetry_entries("w-1").unwrap();
        assert_eq!(entries, [TIERS[0].points, TIERS[1].points, TIERS[2].points]);
        let size = std::fs::metadata(store.path()).unwrap().len();
        assert!(
            size <= size_after_31_days + (1 << 20),
            "the file kept growing: {size_after_31_days} -> {size}"
        );
        let hour = read.telemetry("w-1", 0, now - 3_600_000).unwrap();
        assert!((719..=720).contains(&hour.len()), "{}", hour.len());
        assert!(hour.windows(2).all(|w| w[1].at - w[0].at == 5_000));
        assert_eq!(hour[0].gpus.len(), 2);
        let day = read.telemetry("w-1", 1, now - 86_400_000).unwrap();
        assert!((1439..=1440).contains(&day.len()), "{}", day.len());
        // A minute's point is the mean of its twelve 5 s readings.
        let p = &day[10];
        let first = (p.at - start) / 5_000;
        let want: f32 = (first..first + 12).map(|i| (i % 100) as f32).sum::<f32>() / 12.0;
        assert!(
            (p.cpu_percent - want).abs() < 1e-3,
            "{} vs {want}",
            p.cpu_percent
        );
        drop(read);
        let gone = store
            .write_blocking(|tx| Ok(tx.delete_telemetry("w-1")?))
            .unwrap();
        assert_eq!(gone, TIERS.iter().map(|t| t.points).sum::<u64>());
    }
}
