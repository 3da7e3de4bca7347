//! What machine this is: OS, CPU, memory, GPUs (through `nvidia-smi`), and live utilisation.

use std::process::Command;

use crate::model::{Gpu, GpuUsage, Hardware, Usage};

/// Which GPUs a worker uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuChoice {
    /// Every GPU `nvidia-smi` lists (none if it is missing).
    Auto,
    /// No GPU.
    None,
    /// These GPU indices.
    List(Vec<u32>),
}

impl std::str::FromStr for GpuChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(GpuChoice::Auto),
            "none" | "" => Ok(GpuChoice::None),
            list => list
                .split(',')
                .map(|p| {
                    p.trim().parse::<u32>().map_err(|_| {
                        format!("--gpu {s:?}: use auto, none or a list of GPU indices like 0,1")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(GpuChoice::List),
        }
    }
}

/// Parses `nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv` output.
pub fn parse_nvidia_smi(csv: &str) -> Vec<Gpu> {
    let mut out = Vec::new();
    for line in csv.lines() {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() < 4 {
            continue;
        }
        let Ok(index) = cols[0].parse::<u32>() else {
            continue;
        }; // skips the header
        let memory_mb = cols[2]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        out.push(Gpu {
            index,
            name: cols[1].to_string(),
            memory_mb,
            driver: cols[3].to_string(),
        });
    }
    out
}

/// The columns the worker asks `nvidia-smi` for its GPUs' readings, in order (with
/// `--format=csv,noheader,nounits`).
pub const USAGE_QUERY: &str =
    "--query-gpu=index,uuid,name,temperature.gpu,utilization.gpu,memory.used,memory.total";

/// A reading as `nvidia-smi` prints it: a number, maybe with a unit (`45 %`, `819 MiB`), or a
/// bracketed word when there is none (`[N/A]` on a MIG instance, `[Not Supported]`,
/// `[Unknown Error]`, `[GPU requires reset]`): Ok(None) for "no value", Err(word) for an error.
fn reading(cell: &str) -> Result<Option<f64>, String> {
    let c = cell.trim();
    if let Some(word) = c.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
        return match word {
            "N/A" | "Not Supported" | "Insufficient Permissions" => Ok(None),
            other => Err(other.to_string()),
        };
    }
    let number = c.split_whitespace().next().unwrap_or("");
    Ok(number.parse::<f64>().ok().filter(|v| v.is_finite()))
}

/// Parses `nvidia-smi --query-gpu=index,uuid,name,temperature.gpu,utilization.gpu,memory.used,
/// memory.total` output, with or without a header line and units, into readings for the GPUs
/// in `indices` (the ones this worker uses), in that order. A GPU missing from the output (its
/// handle could not be had: `Unable to determine the device handle for GPU …: Unknown Error`)
/// or whose cells hold an error word gets `error` and no readings; `[N/A]` (MIG) is no reading.
pub fn parse_gpu_usage(output: &str, indices: &[u32]) -> Vec<GpuUsage> {
    // Column positions: from a header if there is one, else the worker's own query order.
    let mut cols = [0usize, 3, 4, 5, 6];
    let mut trouble: Option<String> = None;
    let mut found: Vec<GpuUsage> = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.first().is_some_and(|c| *c == "index") {
            let at = |name: &str| cells.iter().position(|c| c.split(' ').next() == Some(name));
            if let (Some(i), Some(t), Some(u), Some(m), Some(tm)) = (
                at("index"),
                at("temperature.gpu"),
                at("utilization.gpu"),
                at("memory.used"),
                at("memory.total"),
            ) {
                cols = [i, t, u, m, tm];
            }
            continue;
        }
        let Some(index) = cells.get(cols[0]).and_then(|c| c.parse::<u32>().ok()) else {
            // A line about the whole query or one GPU (an error the driver printed).
            if trouble.is_none() && !line.is_empty() {
                trouble = Some(line.chars().take(200).collect());
            }
            continue;
        };
        let mut g = GpuUsage {
            index,
            ..GpuUsage::default()
        };
        let mut errors = Vec::new();
        let mut take = |col: usize| match cells.get(col).map(|c| reading(c)) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
                None
            }
            None => None,
        };
        g.temperature_c = take(cols[1]).map(|v| v as f32);
        g.utilization = take(cols[2]).map(|v| v as f32);
        g.memory_used_mb = take(cols[3]).map(|v| v as u64);
        g.memory_total_mb = take(cols[4]).map(|v| v as u64);
        if !errors.is_empty() {
            g.error = Some(errors.join(", "));
        }
        found.push(g);
    }
    indices
        .iter()
        .map(|&i| {
            found
                .iter()
                .find(|g| g.index == i)
                .cloned()
                .unwrap_or_else(|| GpuUsage {
                    index: i,
                    error: Some(match &trouble {
                        Some(t) => format!("no reading: {t}"),
                        None => "no reading: nvidia-smi did not list it".into(),
                    }),
                    ..GpuUsage::default()
                })
        })
        .collect()
}

/// Runs `nvidia-smi` and returns what it printed, whatever its exit status: with one GPU in
/// error it exits non-zero yet lists the others.
fn nvidia_smi_output(args: &[&str]) -> Option<String> {
    let out = Command::new("nvidia-smi").args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (!text.trim().is_empty()).then_some(text)
}

fn nvidia_smi(args: &[&str]) -> Option<String> {
    let out = Command::new("nvidia-smi").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Lists GPUs per the choice, as `nvidia-smi` sees them.
pub fn detect_gpus(choice: &GpuChoice) -> Result<Vec<Gpu>, String> {
    if *choice == GpuChoice::None {
        return Ok(Vec::new());
    }
    let listed = nvidia_smi(&[
        "--query-gpu=index,name,memory.total,driver_version",
        "--format=csv",
    ])
    .map(|s| parse_nvidia_smi(&s));
    select_gpus(choice, listed)
}

/// The GPUs `choice` names among those `nvidia-smi` listed (None: it is missing or did not
/// answer). A GPU that cannot be seen is refused: a worker must not advertise, and take jobs
/// for, a GPU nobody checked is there.
pub fn select_gpus(choice: &GpuChoice, listed: Option<Vec<Gpu>>) -> Result<Vec<Gpu>, String> {
    match choice {
        GpuChoice::None => Ok(Vec::new()),
        GpuChoice::Auto => Ok(listed.unwrap_or_default()),
        GpuChoice::List(ids) => {
            let Some(all) = listed else {
                let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                return Err(format!(
                    "--gpu {}: no GPU can be seen on this machine (nvidia-smi is missing or does not answer); use --gpu none, or --gpu auto for whatever GPUs nvidia-smi lists",
                    ids.join(",")
                ));
            };
            ids.iter()
                .map(|i| {
                    all.iter().find(|g| g.index == *i).cloned().ok_or_else(|| {
                        format!("GPU {i} not found (nvidia-smi lists {})", all.len())
                    })
                })
                .collect()
        }
    }
}

/// The machine's hardware, with the chosen GPUs.
pub fn detect(gpus: Vec<Gpu>) -> Hardware {
    let mut sys = sysinfo::System::new().ok();
    if let Some(sys) = sys.as_mut() {
        sys.refresh_memory();
        sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    }
    let cpu_model = sys
        .as_ref()
        .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown CPU".into());
    Hardware {
        os: format!(
            "{} {}",
            sysinfo::System::name().unwrap_or_else(|_| std::env::consts::OS.into()),
            sysinfo::System::os_version().unwrap_or_default()
        )
        .trim()
        .to_string(),
        arch: std::env::consts::ARCH.into(),
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        cpu_model,
        cpu_cores: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_mb: sys.as_ref().map(|s| s.total_memory()).unwrap_or(0) / (1024 * 1024),
        gpus,
    }
}

/// Samples CPU / memory / GPU utilisation; keep one and call [`UsageProbe::sample`] each
/// heartbeat (CPU use is measured between two samples).
pub struct UsageProbe {
    sys: Option<sysinfo::System>,
    /// The indices of the GPUs this worker uses (empty: none, nvidia-smi is not asked).
    gpus: Vec<u32>,
}

impl UsageProbe {
    /// A probe for the GPUs with these indices (none: nvidia-smi is not asked).
    pub fn new(gpus: Vec<u32>) -> UsageProbe {
        let mut sys = sysinfo::System::new().ok();
        if let Some(sys) = sys.as_mut() {
            sys.refresh_cpu_usage();
            sys.refresh_memory();
        }
        UsageProbe { sys, gpus }
    }

    /// Utilisation since the last sample.
    pub fn sample(&mut self) -> Usage {
        let (cpu, used, total) = match self.sys.as_mut() {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                (
                    sys.global_cpu_usage(),
                    sys.used_memory(),
                    sys.total_memory().max(1),
                )
            }
            None => (0.0, 0, 1),
        };
        let gpus = if self.gpus.is_empty() {
            Vec::new()
        } else {
            let out = nvidia_smi_output(&[USAGE_QUERY, "--format=csv,noheader,nounits"])
                .unwrap_or_else(|| "nvidia-smi did not answer".into());
            parse_gpu_usage(&out, &self.gpus)
        };
        Usage {
            cpu_percent: cpu,
            memory_percent: (used as f64 / total as f64 * 100.0) as f32,
            gpu_percent: gpus.iter().map(|g| g.utilization.unwrap_or(0.0)).collect(),
            gpus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_csv() {
        let csv = "index, name, memory.total [MiB], driver_version\n0, NVIDIA GeForce RTX 5070, 12227 MiB, 570.86\n1, NVIDIA A100-SXM4-80GB, 81920 MiB, 570.86\n";
        let g = parse_nvidia_smi(csv);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].name, "NVIDIA GeForce RTX 5070");
        assert_eq!(g[1].memory_mb, 81920);
        assert_eq!(g[1].index, 1);
    }

    fn fixture(name: &str) -> String {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nvidia-smi");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn gpu_readings_of_an_eight_gpu_machine() {
        let g = parse_gpu_usage(&fixture("titan-x-8gpu.csv"), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(g.len(), 8);
        assert_eq!(g[0].utilization, Some(0.0));
        assert_eq!(g[1].utilization, Some(86.0));
        assert_eq!(g[1].memory_used_mb, Some(10032));
        assert_eq!(g[1].memory_total_mb, Some(12206));
        assert_eq!(g[7].temperature_c, Some(55.0));
        assert!(g.iter().all(|g| g.error.is_none()));
        // A worker that uses GPUs 2 and 5 reports those, in its order.
        let mine = parse_gpu_usage(&fixture("titan-x-8gpu.csv"), &[5, 2]);
        assert_eq!((mine[0].index, mine[0].memory_used_mb), (5, Some(6440)));
        assert_eq!((mine[1].index, mine[1].utilization), (2, Some(85.0)));
    }

    #[test]
    fn gpu_readings_of_datacenter_cards_with_units_and_mig() {
        let h100 = parse_gpu_usage(&fixture("nvidia-h100-80gb-hbm3__590.48.01.csv"), &[0]);
        assert_eq!(h100[0].utilization, Some(100.0));
        assert_eq!(h100[0].memory_used_mb, Some(19818));
        assert_eq!(h100[0].memory_total_mb, Some(81559));
        assert_eq!(h100[0].temperature_c, Some(59.0));
        // MIG: the whole GPU's utilisation is [N/A] — no reading, not an error, not a zero.
        for f in [
            "nvidia-h100-mig__590.48.01.csv",
            "nvidia-h200-mig__590.48.01.csv",
        ] {
            let g = &parse_gpu_usage(&fixture(f), &[0])[0];
            assert_eq!(g.utilization, None, "{f}");
            assert!(g.error.is_none(), "{f}");
            assert!(g.memory_used_mb.unwrap() > 10_000, "{f}");
        }
        let l40s = &parse_gpu_usage(&fixture("nvidia-l40s__595.80.csv"), &[0])[0];
        assert_eq!(
            (l40s.utilization, l40s.memory_total_mb),
            (Some(9.0), Some(46068))
        );
        let rtx = &parse_gpu_usage(
            &fixture("nvidia-geforce-rtx-4080-super__595.71.05.csv"),
            &[0],
        )[0];
        assert_eq!(rtx.memory_total_mb, Some(16376));
        assert!(
            parse_gpu_usage(
                &fixture("nvidia-geforce-rtx-2080-super__610.57.04.csv"),
                &[0]
            )[0]
            .utilization
            .is_some()
        );
    }

    #[test]
    fn a_gpu_in_error_is_reported_as_such_and_the_others_still_read() {
        let g = parse_gpu_usage(&fixture("gpu-in-error.txt"), &[0, 1, 2, 3]);
        assert_eq!(g[1].utilization, Some(86.0));
        let lost = g[2].error.as_deref().unwrap();
        assert!(
            lost.contains("Unable to determine the device handle"),
            "{lost}"
        );
        assert_eq!(g[2].utilization, None);
        assert_eq!(g[3].error.as_deref(), Some("Unknown Error"));
        assert_eq!(g[3].utilization, None);
        assert_eq!(
            g[3].memory_used_mb,
            Some(6442),
            "what it could read, it reads"
        );
        // nvidia-smi missing altogether: every GPU says so.
        let none = parse_gpu_usage("nvidia-smi did not answer", &[0]);
        assert!(none[0].error.as_deref().unwrap().contains("did not answer"));
        // Garbage never panics.
        let _ = parse_gpu_usage("0,,,,,,\n,,\n[\n0, x, y, [, ], , ", &[0, 1]);
    }

    #[test]
    fn gpu_choice() {
        assert_eq!("auto".parse::<GpuChoice>().unwrap(), GpuChoice::Auto);
        assert_eq!(
            "0,1".parse::<GpuChoice>().unwrap(),
            GpuChoice::List(vec![0, 1])
        );
        assert!("0,x".parse::<GpuChoice>().is_err());
    }

    #[test]
    fn gpus_that_cannot_be_seen_are_refused() {
        let listed = parse_nvidia_smi("0, NVIDIA A100, 81920 MiB, 570.86\n");
        let list = |ids: &[u32]| GpuChoice::List(ids.to_vec());
        let err = select_gpus(&list(&[0]), None).unwrap_err();
        assert!(
            err.starts_with("--gpu 0: no GPU can be seen on this machine"),
            "{err}"
        );
        assert!(err.contains("--gpu none"), "{err}");
        let err = select_gpus(&list(&[1]), Some(listed.clone())).unwrap_err();
        assert_eq!(err, "GPU 1 not found (nvidia-smi lists 1)");
        assert_eq!(
            select_gpus(&list(&[0]), Some(listed.clone())).unwrap()[0].name,
            "NVIDIA A100"
        );
        assert!(select_gpus(&GpuChoice::Auto, None).unwrap().is_empty());
        assert!(
            select_gpus(&GpuChoice::None, Some(listed))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn detects_this_machine() {
        let hw = detect(Vec::new());
        assert!(hw.cpu_cores >= 1);
        assert!(hw.memory_mb > 0);
    }
}
