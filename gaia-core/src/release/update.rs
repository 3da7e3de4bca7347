//! The worker side of releases: move to the promoted release between jobs, safely.
//!
//! Download to a temp file beside the running binary → check size and SHA-256 against the
//! release's metadata (and the ed25519 signature when a key is trusted) → run the new binary once
//! (`--version` must print exactly the release's version) → sync `experiments.tar.gz` (checked the
//! same way, unpacked into a fresh folder, swapped in by rename) → keep the old binary as
//! `<exe>.bak` → replace the binary (`self-replace`) → re-execute with the same arguments. Any
//! failure before the replacement leaves the worker exactly as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{EXPERIMENTS_ARCHIVE, Release, ReleaseFile, sha256_file, this_platform, verify};
use crate::client::Client;

/// Where the worker lives and what it trusts.
pub struct UpdatePaths {
    /// The running binary (read before anything replaces it).
    pub exe: PathBuf,
    pub experiments_dir: PathBuf,
    /// Public key (hex) that must have signed every file, if any.
    pub trust_key: Option<String>,
}

/// The `.bak` beside a binary.
pub fn backup_path(exe: &Path) -> PathBuf {
    let mut name = exe.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    exe.with_file_name(name)
}

fn check_file(
    release: &Release,
    f: &ReleaseFile,
    path: &Path,
    trust_key: Option<&str>,
) -> Result<(), String> {
    let (sha, size) =
        sha256_file(path).map_err(|e| format!("cannot read the download of {}: {e}", f.name))?;
    if size != f.size {
        return Err(format!(
            "{} of {}: downloaded {size} bytes, the release says {} — refusing it",
            f.name, release.tag, f.size
        ));
    }
    if f.sha256.len() != 64 {
        return Err(format!(
            "{} of {} has no SHA-256 in its metadata — refusing it",
            f.name, release.tag
        ));
    }
    if sha != f.sha256 {
        return Err(format!(
            "{} of {}: SHA-256 {sha} does not match the release's {} — refusing it",
            f.name, release.tag, f.sha256
        ));
    }
    if let Some(key) = trust_key {
        let sig = f.signature.as_deref().ok_or_else(|| {
            format!(
                "{} of {} is not signed, and this worker trusts a release key — refusing it",
                f.name, release.tag
            )
        })?;
        verify(key, &release.tag, &f.name, &f.sha256, sig)
            .map_err(|e| format!("{} of {}: {e} — refusing it", f.name, release.tag))?;
    }
    Ok(())
}

fn download(client: &Client, release: &Release, f: &ReleaseFile, to: &Path) -> Result<(), String> {
    let mut file =
        std::fs::File::create(to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    client
        .download(
            &format!("/api/v1/releases/{}/files/{}", release.tag, f.name),
            &mut file,
        )
        .map_err(|e| format!("downloading {} of {}: {e}", f.name, release.tag))?;
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", to.display()))
}

/// Runs the downloaded binary once: it must start and report exactly `version`.
fn self_check(bin: &Path, version: &str) -> Result<(), String> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("the new binary does not start: {e} — refusing it"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut out = String::new();
            if let Some(mut s) = child.stdout.take() {
                use std::io::Read;
                let _ = s.read_to_string(&mut out);
            }
            let said = out.trim();
            let want = format!("gaia {version}");
            if !status.success() || said != want {
                return Err(format!(
                    "the new binary says {said:?}, expected {want:?} — refusing it"
                ));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the new binary did not answer --version within 20 s — refusing it".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves this worker to release `tag`. On Ok the binary (and experiments) are replaced and the
/// caller re-executes; on Err nothing was replaced.
pub fn update_to(
    client: &Client,
    tag: &str,
    paths: &UpdatePaths,
    say: &dyn Fn(&str),
) -> Result<(), String> {
    let release = client
        .release(tag)
        .map_err(|e| format!("cannot read release {tag}: {e}"))?;
    let platform = this_platform();
    let bin = release
        .files
        .iter()
        .find(|f| f.platform == platform && f.name != EXPERIMENTS_ARCHIVE)
        .ok_or_else(|| format!("release {tag} has no gaia binary for {platform}"))?;
    let dir = paths.exe.parent().ok_or("the binary has no folder")?;
    let tmp = dir.join(format!(".gaia-update-{tag}"));
    say(&format!(
        "updating to {tag}: downloading {} ({} bytes)",
        bin.name, bin.size
    ));
    let result = (|| {
        download(client, &release, bin, &tmp)?;
        check_file(&release, bin, &tmp, paths.trust_key.as_deref())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
        self_check(&tmp, tag.trim_start_matches('v'))?;
        // Keep the old binary first: nothing has changed yet if that fails.
        let bak = backup_path(&paths.exe);
        std::fs::copy(&paths.exe, &bak)
            .map_err(|e| format!("cannot keep the old binary as {}: {e}", bak.display()))?;
        let swap = match release.files.iter().find(|f| f.name == EXPERIMENTS_ARCHIVE) {
            Some(ex) => Some(sync_experiments(client, &release, ex, paths, say)?),
            None => None,
        };
        if let Err(e) = self_replace::self_replace(&tmp) {
            // Put the old experiments back: a failed update leaves the worker as it was.
            if let Some(swap) = swap {
                swap.undo();
            }
            return Err(format!("cannot replace the binary: {e}"));
        }
        if let Some(swap) = swap {
            swap.done();
        }
        say(&format!(
            "updated to {tag}; the old binary is kept as {}",
            bak.display()
        ));
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The experiments folder swapped for a release's: the old one is kept beside it until the
/// update is complete, so a failure later on can put it back.
struct Swap {
    target: PathBuf,
    old: Option<PathBuf>,
}

impl Swap {
    fn undo(self) {
        if let Some(old) = &self.old {
            let aside = self.target.with_extension("failed-update");
            if std::fs::rename(&self.target, &aside).is_ok()
                && std::fs::rename(old, &self.target).is_ok()
            {
                let _ = std::fs::remove_dir_all(aside);
            }
        }
    }

    fn done(self) {
        if let Some(old) = self.old {
            let _ = std::fs::remove_dir_all(old);
        }
    }
}

/// Downloads, checks and unpacks the experiments archive beside the experiments folder, then
/// swaps it in with renames so a job never sees half a tree.
fn sync_experiments(
    client: &Client,
    release: &Release,
    f: &ReleaseFile,
    paths: &UpdatePaths,
    say: &dyn Fn(&str),
) -> Result<Swap, String> {
    let target = &paths.experiments_dir;
    let parent = target
        .parent()
        .ok_or("the experiments folder has no parent")?;
    let base = target
        .file_name()
        .ok_or("the experiments folder has no name")?
        .to_string_lossy()
        .into_owned();
    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    let archive = parent.join(format!(".{base}.{}.tar.gz", release.tag));
    let fresh = parent.join(format!(".{base}.{}.new", release.tag));
    let old = parent.join(format!(".{base}.{}.old", release.tag));
    let _ = std::fs::remove_dir_all(&fresh);
    let _ = std::fs::remove_dir_all(&old);
    let result = (|| {
        download(client, release, f, &archive)?;
        check_file(release, f, &archive, paths.trust_key.as_deref())?;
        let n = super::archive::unpack(&archive, &fresh).map_err(|e| {
            format!(
                "{EXPERIMENTS_ARCHIVE} of {}: {e} — refusing it",
                release.tag
            )
        })?;
        let had_old = target.exists();
        if had_old {
            std::fs::rename(target, &old)
                .map_err(|e| format!("cannot move the old experiments aside: {e}"))?;
        }
        if let Err(e) = std::fs::rename(&fresh, target) {
            let _ = std::fs::rename(&old, target);
            return Err(format!("cannot swap in the new experiments: {e}"));
        }
        say(&format!(
            "experiments synced from {} ({n} entries)",
            release.tag
        ));
        Ok(Swap {
            target: target.clone(),
            old: had_old.then(|| old.clone()),
        })
    })();
    let _ = std::fs::remove_file(&archive);
    let _ = std::fs::remove_dir_all(&fresh);
    result
}

/// Replaces this process with `exe` run with the same arguments. Returns only on failure.
pub fn reexec(exe: &Path) -> std::io::Error {
    let _ = std::io::stderr().flush();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        Command::new(exe).args(std::env::args_os().skip(1)).exec()
    }
    #[cfg(not(unix))]
    {
        match Command::new(exe).args(std::env::args_os().skip(1)).status() {
            Ok(s) => std::process::exit(s.code().unwrap_or(0)),
            Err(e) => e,
        }
    }
}

/// Puts `<exe>.bak` back in place of the running binary.
pub fn rollback(exe: &Path) -> Result<(), String> {
    let bak = backup_path(exe);
    if !bak.exists() {
        return Err(format!("there is no {} to roll back to", bak.display()));
    }
    self_replace::self_replace(&bak)
        .map_err(|e| format!("cannot put {} back: {e}", bak.display()))?;
    std::fs::remove_file(&bak)
        .map_err(|e| format!("rolled back, but cannot remove {}: {e}", bak.display()))?;
    Ok(())
}
