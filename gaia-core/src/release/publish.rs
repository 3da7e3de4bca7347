//! The publisher's side of a release: the files an upload sends (binaries named by platform,
//! the experiments folder packed, each file signed) and the signing key pair on disk.
//!
//! `gaia release upload` and `gaia release keygen` are this module plus printing; the upload
//! itself is [`crate::client::Client::upload_release_file`], once per [`Upload`].

use std::path::{Path, PathBuf};

use super::{ANY_PLATFORM, EXPERIMENTS_ARCHIVE, detect_platform, keygen, sha256_file, sign};
use crate::error::{Error, RequestError};

/// Name of every `gaia` binary in a release of one platform.
pub const BINARY: &str = "gaia";

/// One file of a release, ready to upload.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    /// Its name in the release: `gaia`, `gaia-<platform>` when several binaries go together,
    /// or [`EXPERIMENTS_ARCHIVE`].
    pub name: String,
    pub path: PathBuf,
    /// The platform to record (`None`: the server reads it from the file).
    pub platform: Option<String>,
    /// Its ed25519 signature (hex), when a secret key was given.
    pub signature: Option<String>,
}

/// A release's files prepared for upload. The packed experiments archive lives in a temporary
/// folder that is removed when the bundle is dropped, on errors too.
#[derive(Debug)]
pub struct Bundle {
    pub uploads: Vec<Upload>,
    /// How many files of the experiments folder were packed, if one was.
    pub packed: Option<u64>,
    _tmp: Option<TempDir>,
}

/// Prepares the files of release `tag`: `binaries` (named `gaia`, or `gaia-<platform>` each
/// when there are several, the platform read from the file unless `platform` says), the
/// `experiments` folder packed into [`EXPERIMENTS_ARCHIVE`], and every file signed with
/// `secret_key` (hex, from [`write_key_pair`]) if given.
pub fn bundle(
    tag: &str,
    binaries: &[PathBuf],
    platform: Option<&str>,
    experiments: Option<&Path>,
    secret_key: Option<&str>,
) -> Result<Bundle, Error> {
    super::validate_tag(tag)?;
    if binaries.is_empty() && experiments.is_none() {
        return Err(invalid(
            "nothing to upload: give binaries and/or an experiments folder".into(),
        ));
    }
    let mut uploads = Vec::new();
    for f in binaries {
        if !f.is_file() {
            return Err(invalid(format!("{} is not a file", f.display())));
        }
        uploads.push(Upload {
            name: BINARY.into(),
            path: f.clone(),
            platform: platform.map(str::to_string),
            signature: None,
        });
    }
    if uploads.len() > 1 {
        // Several binaries: name each after its platform so they sit side by side.
        for u in &mut uploads {
            let p = match &u.platform {
                Some(p) => p.clone(),
                None => platform_of_file(&u.path)?.ok_or_else(|| {
                    invalid(format!(
                        "cannot tell the platform of {}; pass --platform",
                        u.path.display()
                    ))
                })?,
            };
            u.name = format!("{BINARY}-{p}");
            u.platform = Some(p);
        }
    }
    let mut packed = None;
    let mut tmp = None;
    if let Some(dir) = experiments {
        let t = TempDir::new()?;
        let out = t.0.join(EXPERIMENTS_ARCHIVE);
        let n = super::archive::pack(dir, &out)
            .map_err(|e| Error::Other(format!("cannot pack {}: {e}", dir.display())))?;
        packed = Some(n);
        uploads.push(Upload {
            name: EXPERIMENTS_ARCHIVE.into(),
            path: out,
            platform: Some(ANY_PLATFORM.into()),
            signature: None,
        });
        tmp = Some(t);
    }
    if let Some(key) = secret_key {
        for u in &mut uploads {
            let (sha, _) = sha256_file(&u.path).map_err(|e| Error::io(&u.path, e))?;
            u.signature = Some(sign(key, tag, &u.name, &sha).map_err(Error::Other)?);
        }
    }
    Ok(Bundle {
        uploads,
        packed,
        _tmp: tmp,
    })
}

/// A binary's platform, from its first bytes (see [`detect_platform`]).
pub fn platform_of_file(path: &Path) -> Result<Option<String>, Error> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| Error::io(path, e))?;
    Ok(detect_platform(&head))
}

/// Makes a signing key pair: the secret key (hex) in a new file `secret` that only its owner
/// may read (mode 0600 on Unix), the public key in `<secret>.pub`. Refuses to overwrite either.
/// Returns the public key's path.
pub fn write_key_pair(secret: &Path) -> Result<PathBuf, Error> {
    let public_path = PathBuf::from(format!("{}.pub", secret.display()));
    if secret.exists() || public_path.exists() {
        return Err(invalid(format!(
            "{} or {} exists; not overwriting a key",
            secret.display(),
            public_path.display()
        )));
    }
    let (secret_hex, public_hex) = keygen();
    write_private(secret, &format!("{secret_hex}\n"))?;
    std::fs::write(&public_path, format!("{public_hex}\n"))
        .map_err(|e| Error::io(&public_path, e))?;
    Ok(public_path)
}

/// Reads a key file written by [`write_key_pair`] (secret or public): its hex, trimmed.
pub fn read_key(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|k| k.trim().to_string())
        .map_err(|e| Error::Other(format!("cannot read key {}: {e}", path.display())))
}

/// Creates `path` (never overwriting) readable by its owner only, and writes `text`.
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(path, e))
}

fn invalid(msg: String) -> Error {
    Error::Request(RequestError::Invalid(msg))
}

/// A fresh folder under the system's temp dir, removed (with what is in it) when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, Error> {
        let dir = std::env::temp_dir().join(format!(
            "gaia-release-{}-{}",
            std::process::id(),
            crate::model::now_ms()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("release-key");
        let public = write_key_pair(&secret).unwrap();
        assert_eq!(public, dir.path().join("release-key.pub"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let (s, p) = (read_key(&secret).unwrap(), read_key(&public).unwrap());
        let sig = sign(&s, "v1.0.0", "gaia", "abc").unwrap();
        super::super::verify(&p, "v1.0.0", "gaia", "abc", &sig).unwrap();
        let err = write_key_pair(&secret).unwrap_err().to_string();
        assert!(err.contains("not overwriting"), "{err}");
        assert_eq!(read_key(&secret).unwrap(), s, "the key is untouched");
    }

    #[test]
    fn a_bundle_names_signs_and_packs_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // Small stand-ins with the headers of real binaries (x86-64 and aarch64 ELF).
        let elf = |name: &str, machine: u8| {
            let mut head = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
            head.resize(64, 0);
            head[18] = machine;
            let path = dir.path().join(name);
            std::fs::write(&path, &head).unwrap();
            path
        };
        let (exe, other) = (elf("gaia-x86", 0x3E), elf("gaia-arm", 0xB7));
        let experiments = dir.path().join("experiments");
        std::fs::create_dir(&experiments).unwrap();
        std::fs::write(experiments.join("run_all.py"), "print('hi')\n").unwrap();
        let secret = dir.path().join("key");
        let public = read_key(&write_key_pair(&secret).unwrap()).unwrap();
        let key = read_key(&secret).unwrap();

        let b = bundle(
            "v1.2.0",
            &[exe.clone(), other.clone()],
            None,
            Some(&experiments),
            Some(&key),
        )
        .unwrap();
        let names: Vec<&str> = b.uploads.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gaia-linux-x86_64",
                "gaia-linux-aarch64",
                EXPERIMENTS_ARCHIVE
            ]
        );
        assert_eq!(b.packed, Some(1));
        for u in &b.uploads {
            let (sha, _) = sha256_file(&u.path).unwrap();
            let sig = u.signature.as_deref().unwrap();
            super::super::verify(&public, "v1.2.0", &u.name, &sha, sig).unwrap();
        }
        let archive = b.uploads[2].path.clone();
        assert!(archive.exists());
        drop(b);
        assert!(
            !archive.exists(),
            "the packed archive is removed with the bundle"
        );

        // One binary keeps the name `gaia`; unsigned without a key.
        let b = bundle("v1.2.0", &[exe], None, None, None).unwrap();
        assert_eq!(b.uploads.len(), 1);
        assert_eq!(b.uploads[0].name, "gaia");
        assert!(b.uploads[0].signature.is_none() && b.uploads[0].platform.is_none());

        for (tag, bins, says) in [
            ("v1", vec![other.clone()], "invalid release tag"),
            ("v1.0.0", vec![], "nothing to upload"),
            ("v1.0.0", vec![dir.path().to_path_buf()], "is not a file"),
            (
                "v1.0.0",
                vec![other.clone(), experiments.join("run_all.py")],
                "cannot tell the platform",
            ),
        ] {
            let err = bundle(tag, &bins, None, None, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
