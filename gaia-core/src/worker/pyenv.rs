//! The experiments' Python environment: a virtualenv built from `experiments/requirements.txt`,
//! rebuilt when that file changes (a SHA-256 stamp inside the venv says what it was built from,
//! written last, so a build that was interrupted is rebuilt too, and said so).

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
    let built_from = std::fs::read_to_string(&stamp).ok();
    let plan = plan(venv.exists(), python.exists(), built_from.as_deref(), &want);
    if plan == Plan::Ready {
        return Ok(python);
    }
    let base =
        find_python().ok_or("no python3 found on PATH; install Python 3.10+ or pass --python")?;
    if let Plan::Rebuild(why) = plan {
        say(&format!(
            "{why}: rebuilding the Python environment in {}",
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

/// What the venv needs before experiments can run.
#[derive(Debug, PartialEq)]
enum Plan {
    Ready,
    /// There is none yet.
    Build,
    /// There is one, not usable as it is, for this reason.
    Rebuild(&'static str),
}

/// Decides from what is on disk: whether the venv folder and its python exist, and the stamp
/// the last finished build wrote (the SHA-256 of the requirements it installed) against `want`.
/// The stamp is written last, so a venv without one is a build that was interrupted.
fn plan(venv: bool, python: bool, stamp: Option<&str>, want: &str) -> Plan {
    match stamp.map(str::trim) {
        _ if !venv => Plan::Build,
        None => Plan::Rebuild("the previous environment build did not finish"),
        Some(s) if s != want => Plan::Rebuild("requirements.txt changed"),
        Some(_) if !python => Plan::Rebuild("the environment has no bin/python"),
        Some(_) => Plan::Ready,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_says_why_it_rebuilds() {
        assert_eq!(plan(false, false, None, "a"), Plan::Build);
        assert_eq!(plan(true, true, Some("a\n"), "a"), Plan::Ready);
        assert_eq!(
            plan(true, true, None, "a"),
            Plan::Rebuild("the previous environment build did not finish")
        );
        assert_eq!(
            plan(true, false, None, "a"),
            Plan::Rebuild("the previous environment build did not finish")
        );
        assert_eq!(
            plan(true, true, Some("b"), "a"),
            Plan::Rebuild("requirements.txt changed")
        );
        assert_eq!(
            plan(true, false, Some("a"), "a"),
            Plan::Rebuild("the environment has no bin/python")
        );
    }
}
