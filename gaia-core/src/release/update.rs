//! The worker side of releases: move to the promoted release between jobs, safely.
//!
//! Download to a temp file beside the running binary → check size and SHA-256 against the
//! release's metadata (and the ed25519 signature when a key is trusted) → run the new binary once
//! (`--version` must print exactly the release's version) → sync `experiments.tar.gz` (checked the
//! same way, unpacked into a fresh folder, swapped in by rename) → keep the old binary as
//! `<exe>.bak` → replace the binary (`self-replace`) → re-execute with the same arguments. Any
//! failure before the replacement leaves the worker exactly as it was, its `<exe>.bak` included:
//! the old binary is copied to a staging file and renamed over `.bak` only after the binary is
//! replaced, so a refused update never costs the way back to an earlier release.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    EXPERIMENTS_ARCHIVE, Release, ReleaseFile, sha256_file, this_platform, validate_tag, verify,
};
use crate::client::Client;
use crate::error::ClientError;
use crate::model::validate_file_name;

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

/// Checks what the metadata says about a file before anything is downloaded: a usable name
/// and a SHA-256. Missing metadata means no update (never a skipped check).
fn check_metadata(release: &Release, f: &ReleaseFile) -> Result<(), String> {
    validate_file_name(&f.name)
        .map_err(|e| format!("release {}: {e} — refusing it", release.tag))?;
    if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{} of {} has no SHA-256 in its metadata — refusing it",
            f.name, release.tag
        ));
    }
    Ok(())
}

fn check_file(
    release: &Release,
    f: &ReleaseFile,
    path: &Path,
    trust_key: Option<&str>,
) -> Result<(), String> {
    check_metadata(release, f)?;
    let (sha, size) =
        sha256_file(path).map_err(|e| format!("cannot read the download of {}: {e}", f.name))?;
    if size != f.size {
        return Err(format!(
            "{} of {}: downloaded {size} bytes, the release says {} — refusing it",
            f.name, release.tag, f.size
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

/// Downloads a release file to `to`, reading at most one byte more than the metadata's size:
/// a longer answer is refused before it can fill the disk.
fn download(client: &Client, release: &Release, f: &ReleaseFile, to: &Path) -> Result<(), String> {
    let mut file =
        std::fs::File::create(to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    let path = format!("/api/v1/releases/{}/files/{}", release.tag, f.name);
    match client.download_at_most(&path, &mut file, f.size) {
        Ok(_) => {}
        Err(ClientError::TooLarge { .. }) => {
            return Err(format!(
                "{} of {}: the server sent more than the release's {} bytes — refusing it",
                f.name, release.tag, f.size
            ));
        }
        Err(e) => return Err(format!("downloading {} of {}: {e}", f.name, release.tag)),
    }
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
    // The tag comes from the server's heartbeat and names files and folders below: check it
    // before anything else, and hold the server's answer to it.
    validate_tag(tag).map_err(|e| format!("{e} — refusing it"))?;
    let release = client
        .release(tag)
        .map_err(|e| format!("cannot read release {tag}: {e}"))?;
    if release.tag != tag {
        return Err(format!(
            "asked the server for release {tag}, it answered with release {:?} — refusing it",
            release.tag
        ));
    }
    let platform = this_platform();
    let bin = release
        .files
        .iter()
        .find(|f| f.platform == platform && f.name != EXPERIMENTS_ARCHIVE)
        .ok_or_else(|| format!("release {tag} has no gaia binary for {platform} — refusing it"))?;
    check_metadata(&release, bin)?;
    let experiments = release.files.iter().find(|f| f.name == EXPERIMENTS_ARCHIVE);
    if let Some(ex) = experiments {
        check_metadata(&release, ex)?;
    }
    let dir = paths.exe.parent().ok_or("the binary has no folder")?;
    let tmp = dir.join(format!(".gaia-update-{tag}"));
    let bak_staged = dir.join(format!(".gaia-update-{tag}.bak"));
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
        // Copy the old binary beside the final `.bak` first; the `.bak` itself is replaced
        // only once the binary is, so a refusal below (the experiments archive, the swap)
        // leaves the `.bak` of an earlier update in place and `--rollback` still reaches it.
        let bak = backup_path(&paths.exe);
        std::fs::copy(&paths.exe, &bak_staged)
            .map_err(|e| format!("cannot keep the old binary as {}: {e}", bak.display()))?;
        let swap = match experiments {
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
        // The binary is replaced: the update happened whatever follows, so a `.bak` that
        // cannot take its place is a warning, not a failed update.
        if let Err(e) = std::fs::rename(&bak_staged, &bak) {
            say(&format!(
                "updated to {tag}, but cannot keep the old binary as {}: {e}",
                bak.display()
            ));
            return Ok(());
        }
        say(&format!(
            "updated to {tag}; the old binary is kept as {}",
            bak.display()
        ));
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&bak_staged);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// What the hostile server answers to one path.
    enum Reply {
        Json(String),
        /// `total` zero bytes, with this content-length (None: the body ends when the
        /// connection closes).
        Zeros {
            declared: Option<u64>,
            total: u64,
        },
        NotFound,
    }

    /// A server that answers whatever the test says: it sees every path asked and counts the
    /// bytes it managed to send.
    struct Hostile {
        url: String,
        seen: Arc<Mutex<Vec<String>>>,
        sent: Arc<AtomicU64>,
    }

    fn hostile(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let route = Arc::new(route);
        let (s, n) = (seen.clone(), sent.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (route, s, n) = (route.clone(), s.clone(), n.clone());
                std::thread::spawn(move || answer(conn, &*route, &s, &n));
            }
        });
        Hostile { url, seen, sent }
    }

    fn answer(
        mut conn: TcpStream,
        route: &dyn Fn(&str) -> Reply,
        seen: &Mutex<Vec<String>>,
        sent: &AtomicU64,
    ) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut first = String::new();
        if reader.read_line(&mut first).is_err() {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let path = first.split(' ').nth(1).unwrap_or("").to_string();
        seen.lock().unwrap().push(path.clone());
        let _ = match route(&path) {
            Reply::Json(body) => write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
            Reply::NotFound => write!(
                conn,
                "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            ),
            Reply::Zeros { declared, total } => {
                let len = declared
                    .map(|d| format!("content-length: {d}\r\n"))
                    .unwrap_or_default();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n{len}connection: close\r\n\r\n"
                );
                let chunk = vec![0u8; 64 * 1024];
                let mut left = total;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    if conn.write_all(&chunk[..k]).is_err() {
                        break;
                    }
                    sent.fetch_add(k as u64, Ordering::SeqCst);
                    left -= k as u64;
                }
                Ok(())
            }
        };
    }

    fn release_json(tag: &str, size: u64, sha256: &str, platform: &str) -> String {
        serde_json::to_string(&Release {
            tag: tag.into(),
            created_at: 0,
            files: vec![ReleaseFile {
                name: "gaia".into(),
                platform: platform.into(),
                size,
                sha256: sha256.into(),
                signature: None,
                uploaded_at: 0,
                uploaded_by: "admin".into(),
            }],
            promoted_seq: Some(1),
            yanked: false,
        })
        .unwrap()
    }

    /// A worker's folders: a binary folder and an experiments folder, both with a file in them.
    struct Place {
        dir: tempfile::TempDir,
        paths: UpdatePaths,
    }

    fn place() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let exp = dir.path().join("experiments");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&exp).unwrap();
        std::fs::write(bin.join("gaia"), "the old binary").unwrap();
        std::fs::write(exp.join("run_all.py"), "print('old')\n").unwrap();
        Place {
            paths: UpdatePaths {
                exe: bin.join("gaia"),
                experiments_dir: exp,
                trust_key: None,
            },
            dir,
        }
    }

    fn tree(p: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![p.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                    out.push((e.path(), Vec::new()));
                } else {
                    out.push((e.path(), std::fs::read(e.path()).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    fn update(server: &Hostile, tag: &str, place: &Place) -> Result<(), String> {
        let client = Client::new(&server.url, Some("t".into())).unwrap();
        update_to(&client, tag, &place.paths, &|_| {})
    }

    #[test]
    fn a_download_longer_than_its_metadata_is_cut_off() {
        const TOTAL: u64 = 64 << 20;
        let sha = "ab".repeat(32);
        let platform = this_platform();
        let server = hostile(move |path| match path {
            "/api/v1/releases/v9.9.9" => Reply::Json(release_json("v9.9.9", 10, &sha, &platform)),
            // Lies about nothing, just never stops: no content-length, 64 MiB.
            "/api/v1/releases/v9.9.9/files/gaia" => Reply::Zeros {
                declared: None,
                total: TOTAL,
            },
            _ => Reply::NotFound,
        });
        let place = place();
        let before = tree(place.dir.path());
        let err = update(&server, "v9.9.9", &place).unwrap_err();
        assert!(
            err.contains("sent more than the release's 10 bytes"),
            "{err}"
        );
        assert!(
            server.sent.load(Ordering::SeqCst) < TOTAL / 2,
            "the worker kept reading after the release's size"
        );
        assert_eq!(tree(place.dir.path()), before, "the refusal left something");

        // A declared length over the size is refused before the body is read.
        let sha = "ab".repeat(32);
        let platform = this_platform();
        let server = hostile(move |path| match path {
            "/api/v1/releases/v9.9.9" => Reply::Json(release_json("v9.9.9", 10, &sha, &platform)),
            "/api/v1/releases/v9.9.9/files/gaia" => Reply::Zeros {
                declared: Some(TOTAL),
                total: TOTAL,
            },
            _ => Reply::NotFound,
        });
        let err = update(&server, "v9.9.9", &place).unwrap_err();
        assert!(
            err.contains("sent more than the release's 10 bytes"),
            "{err}"
        );
        assert_eq!(tree(place.dir.path()), before);
    }

    #[test]
    fn a_bad_tag_from_the_heartbeat_is_refused_before_any_request() {
        let server = hostile(|_| Reply::NotFound);
        let place = place();
        let before = tree(place.dir.path());
        for tag in ["../../x", "v1.0.0/../../x", "v1.0.0/../x", "", "latest"] {
            let err = update(&server, tag, &place).unwrap_err();
            assert!(err.contains("invalid release tag"), "{tag}: {err}");
        }
        assert!(
            server.seen.lock().unwrap().is_empty(),
            "a bad tag was asked for"
        );
        assert_eq!(tree(place.dir.path()), before);
    }

    #[test]
    fn a_release_answered_under_another_tag_is_refused() {
        let platform = this_platform();
        let sha = "ab".repeat(32);
        let server = hostile(move |path| {
            if path == "/api/v1/releases/v9.9.9" {
                // Its tag would name the update's temp files and folders.
                Reply::Json(release_json("v9.9.9/../../victim", 10, &sha, &platform))
            } else {
                Reply::NotFound
            }
        });
        let place = place();
        let before = tree(place.dir.path());
        let err = update(&server, "v9.9.9", &place).unwrap_err();
        assert!(err.contains("answered with release"), "{err}");
        assert_eq!(
            *server.seen.lock().unwrap(),
            vec!["/api/v1/releases/v9.9.9".to_string()],
            "nothing but the metadata was fetched"
        );
        assert_eq!(tree(place.dir.path()), before);
    }

    #[test]
    fn missing_metadata_is_refused_before_any_download() {
        let place = place();
        let before = tree(place.dir.path());
        // No SHA-256.
        let platform = this_platform();
        let server = hostile(move |path| match path {
            "/api/v1/releases/v9.9.9" => Reply::Json(release_json("v9.9.9", 10, "", &platform)),
            _ => Reply::Zeros {
                declared: Some(10),
                total: 10,
            },
        });
        let err = update(&server, "v9.9.9", &place).unwrap_err();
        assert!(err.contains("has no SHA-256 in its metadata"), "{err}");
        assert_eq!(server.seen.lock().unwrap().len(), 1, "it downloaded anyway");
        // No binary for this platform.
        let sha = "ab".repeat(32);
        let server = hostile(move |path| match path {
            "/api/v1/releases/v9.9.9" => {
                Reply::Json(release_json("v9.9.9", 10, &sha, "plan9-mips"))
            }
            _ => Reply::NotFound,
        });
        let err = update(&server, "v9.9.9", &place).unwrap_err();
        assert!(err.contains("has no gaia binary for"), "{err}");
        assert_eq!(server.seen.lock().unwrap().len(), 1);
        assert_eq!(tree(place.dir.path()), before);
    }
}
