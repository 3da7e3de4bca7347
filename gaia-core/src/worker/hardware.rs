//! What machine this is: OS, CPU, memory, GPUs (through `nvidia-smi`), and live utilisation.

use std::process::Command;

use crate::model::{Gpu, Hardware, Usage};

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
    gpus: bool,
}

impl UsageProbe {
    /// A probe; `gpus` says whether to ask nvidia-smi.
    pub fn new(gpus: bool) -> UsageProbe {
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
        let gpu_percent = if self.gpus {
            nvidia_smi(&[
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
            ])
            .map(|s| {
                s.lines()
                    .filter_map(|l| l.trim().parse::<f32>().ok())
                    .collect()
            })
            .unwrap_or_default()
        } else {
            Vec::new()
        };
        Usage {
            cpu_percent: cpu,
            memory_percent: (used as f64 / total as f64 * 100.0) as f32,
            gpu_percent,
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
