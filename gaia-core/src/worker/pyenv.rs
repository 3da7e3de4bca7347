//! The experiments' Python environment: a virtualenv built from `experiments/requirements.txt`,
//! rebuilt when that file changes (a SHA-256 stamp inside the venv says what it was built from).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Folder of the venv inside the worker's state dir.
const VENV: &str = "venv";
const STAMP: &str = "gaia-requirements.sha256";

/// Returns the Python to run experiments with: `explicit` if given, else a venv in `state_dir`
/// built (or rebuilt) from `experiments_dir/requirements.txt`. `say` reports progress.
pub fn ensure(
    explicit: Option<&Path>,
    experiments_dir: &Path,
    state_dir: &Path,
    say: &dyn Fn(&str),
) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let req = experiments_dir.join("requirements.txt");
    let requirements = std::fs::read(&req).map_err(|e| {
        format!(
            "cannot read {} ({e}); pass --experiments-dir or --python",
            req.display()
        )
    })?;
    let want = hex::encode(Sha256::digest(&requirements));
    let venv = state_dir.join(VENV);
    let python = venv.join("bin").join("python");
    let stamp = venv.join(STAMP);
    if python.exists()
        && std::fs::read_to_string(&stamp)
            .map(|s| s.trim() == want)
            .unwrap_or(false)
    {
        return Ok(python);
    }
    let base =
        find_python().ok_or("no python3 found on PATH; install Python 3.10+ or pass --python")?;
    if venv.exists() {
        say(&format!(
            "requirements.txt changed: rebuilding the Python environment in {}",
            venv.display()
        ));
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove old venv {}: {e}", venv.display()))?;
    } else {
        say(&format!(
            "building the experiments' Python environment in {} (once)",
            venv.display()
        ));
    }
    run(
        Command::new(&base).args(["-m", "venv"]).arg(&venv),
        "create the virtualenv",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&req),
        "install experiments/requirements.txt",
    )?;
    std::fs::write(&stamp, &want).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    say("Python environment ready");
    Ok(python)
}

fn find_python() -> Option<PathBuf> {
    for name in ["python3", "python"] {
        if let Ok(out) = Command::new(name).arg("--version").output()
            && out.status.success()
        {
            return Some(PathBuf::from(name));
        }
    }
    None
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    // A worker killed during the build takes pip with it: a pip left running would write into
    // the venv the next start rebuilds.
    let out = super::reaper::die_with_parent(super::runner::without_private_env(cmd))
        .output()
        .map_err(|e| format!("cannot {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        Err(format!(
            "cannot {what} ({}):\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }
}
