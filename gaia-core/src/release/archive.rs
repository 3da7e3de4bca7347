//! The experiments archive: packing a folder into `experiments.tar.gz`, and unpacking one so
//! that nothing escapes the target folder — absolute paths, `..`, and symbolic or hard links
//! that point outside are refused, and the whole archive is refused with them.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Folders and files not packed: caches, virtualenvs, results.
const SKIP: [&str; 6] = [
    ".venv",
    "__pycache__",
    ".pytest_cache",
    "results",
    ".git",
    ".hypothesis",
];

/// Packs `dir` into a gzip'd tar at `out` (paths relative to `dir`, regular files and folders
/// only, caches and virtualenvs left out).
pub fn pack(dir: &Path, out: &Path) -> std::io::Result<u64> {
    let file = File::create(out)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut n = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&rel))?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if SKIP.iter().any(|s| name == *s) || name.to_string_lossy().ends_with(".pyc") {
                continue;
            }
            let path = rel.join(&name);
            let ft = e.file_type()?;
            if ft.is_dir() {
                tar.append_dir(&path, e.path())?;
                stack.push(path);
            } else if ft.is_file() {
                tar.append_path_with_name(e.path(), &path)?;
                n += 1;
            }
        }
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(n)
}

/// Largest unpacked archive accepted.
const MAX_UNPACKED: u64 = 1 << 30;

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("archive entry {0:?} would land outside the folder")]
    Escapes(String),
    #[error("archive entry {0:?} is a link (experiment archives hold files and folders only)")]
    LinkEscapes(String),
    #[error("archive entry {0:?} has an unsupported type")]
    Unsupported(String),
    #[error("reading the archive: {0}")]
    Io(#[from] std::io::Error),
}

/// A path inside the archive, checked: relative, no `..`, no root, no prefix.
fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpacks the gzip'd tar at `archive` into `dest` (which must not exist yet), streaming from
/// the file: nothing is held in memory beyond one entry's buffer. Every entry is checked first;
/// a single bad entry refuses the whole archive and leaves `dest` absent. Only the rwx bits of
/// an entry's mode are kept: setuid, setgid and sticky bits never arrive.
pub fn unpack(archive: &Path, dest: &Path) -> Result<u64, UnpackError> {
    unpack_at_most(archive, dest, MAX_UNPACKED)
}

/// A reader that fails once more than `left` bytes come out of it, so an archive that unpacks
/// past the limit is refused with a clear message instead of filling the disk.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Ask for one byte more than allowed: getting it means the archive is too big.
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "the archive unpacks to more than {} MiB",
                self.limit >> 20
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn open_tar(archive: &Path, limit: u64) -> std::io::Result<tar::Archive<impl Read>> {
    let file = std::io::BufReader::new(File::open(archive)?);
    Ok(tar::Archive::new(Capped {
        inner: flate2::read::GzDecoder::new(file),
        left: limit,
        limit,
    }))
}

fn unpack_at_most(archive: &Path, dest: &Path, limit: u64) -> Result<u64, UnpackError> {
    // Pass 1: check every entry (reading the archive through once, from the file).
    {
        let mut tar = open_tar(archive, limit)?;
        for entry in tar.entries()? {
            let entry = entry?;
            let path = entry.path()?.into_owned();
            let shown = path.display().to_string();
            if safe_relative(&path).is_none() {
                return Err(UnpackError::Escapes(shown));
            }
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                // `pack` never writes links, and a chain of harmless-looking relative links can
                // still resolve outside the folder (`a -> .`, then `a/l -> ..`): refuse them all.
                return Err(UnpackError::LinkEscapes(shown));
            } else if !(kind.is_file()
                || kind.is_dir()
                || kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname())
            {
                return Err(UnpackError::Unsupported(shown));
            }
        }
    }
    // Pass 2: unpack into a fresh folder; `unpack_in` checks again.
    std::fs::create_dir_all(dest)?;
    let result = (|| -> Result<u64, UnpackError> {
        let mut tar = open_tar(archive, limit)?;
        // Not preserved: tar then keeps only `mode & 0o777`, so a setuid or setgid bit in the
        // archive never reaches the disk, while executable scripts stay executable.
        tar.set_preserve_permissions(false);
        tar.set_overwrite(false);
        let mut n = 0;
        for entry in tar.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            if !entry.unpack_in(dest)? {
                return Err(UnpackError::Escapes(path.display().to_string()));
            }
            n += 1;
        }
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dest);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let raw = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        gz.finish().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Write the raw name so that bad paths reach the archive as they are.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        h.set_mode(0o777);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        let ln = &mut h.as_old_mut().linkname;
        ln[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }

    fn refused(archive: Vec<u8>) {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("inside").join("new");
        std::fs::create_dir_all(root.path().join("inside")).unwrap();
        let before: Vec<_> = walk(root.path());
        let file = root.path().join("archive.tar.gz");
        std::fs::write(&file, &archive).unwrap();
        let r = unpack(&file, &dest);
        std::fs::remove_file(&file).unwrap();
        assert!(r.is_err(), "archive was accepted");
        assert!(!dest.exists(), "a refused archive left a folder");
        assert_eq!(walk(root.path()), before, "something changed outside");
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![p.to_path_buf()];
        while let Some(d) = stack.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    out.push(e.path());
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push(e.path());
                    }
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn parent_paths_are_refused() {
        refused(tar_gz(|b| file(b, "../x", b"evil")));
        refused(tar_gz(|b| {
            file(b, "ok.txt", b"fine");
            file(b, "a/../../x", b"evil");
        }));
    }

    #[test]
    fn absolute_paths_are_refused() {
        refused(tar_gz(|b| file(b, "/etc/x", b"evil")));
    }

    #[test]
    fn links_out_are_refused() {
        refused(tar_gz(|b| link(b, tar::EntryType::Symlink, "root", "/")));
        refused(tar_gz(|b| {
            link(b, tar::EntryType::Symlink, "a/up", "../../x")
        }));
        refused(tar_gz(|b| {
            link(b, tar::EntryType::Link, "hard", "../../etc/passwd")
        }));
        refused(tar_gz(|b| {
            link(b, tar::EntryType::Link, "hard", "/etc/passwd")
        }));
    }

    fn file_mode(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn setuid_and_setgid_bits_are_dropped_and_rwx_kept() {
        use std::os::unix::fs::PermissionsExt;
        let archive = tar_gz(|b| {
            file_mode(b, "suid.sh", 0o4755, b"#!/bin/sh\n");
            file_mode(b, "sgid.sh", 0o2755, b"#!/bin/sh\n");
            file_mode(b, "run.sh", 0o755, b"#!/bin/sh\necho hi\n");
            file_mode(b, "data.txt", 0o644, b"d");
        });
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("a.tar.gz");
        std::fs::write(&file, archive).unwrap();
        let dest = root.path().join("out");
        assert_eq!(unpack(&file, &dest).unwrap(), 4);
        let mode = |n: &str| {
            std::fs::metadata(dest.join(n))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("suid.sh"), 0o755, "the setuid bit arrived");
        assert_eq!(mode("sgid.sh"), 0o755, "the setgid bit arrived");
        assert_eq!(
            mode("run.sh"),
            0o755,
            "an executable script lost its x bits"
        );
        assert_eq!(mode("data.txt"), 0o644);
    }

    #[test]
    fn an_archive_that_unpacks_past_the_limit_is_refused() {
        let archive = tar_gz(|b| {
            file(b, "small.txt", b"fine");
            file(b, "big.bin", &vec![0u8; 64 * 1024]);
        });
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("a.tar.gz");
        std::fs::write(&file, archive).unwrap();
        let dest = root.path().join("out");
        let err = unpack_at_most(&file, &dest, 16 * 1024).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        assert!(!dest.exists(), "a refused archive left a folder");
        // The same archive under the real limit unpacks, streamed from the file.
        assert_eq!(unpack(&file, &dest).unwrap(), 2);
        assert_eq!(
            std::fs::metadata(dest.join("big.bin")).unwrap().len(),
            64 * 1024
        );
    }

    #[test]
    fn a_good_archive_round_trips() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("run_all.py"), "print('hi')\n").unwrap();
        std::fs::create_dir_all(src.path().join("pkg/__pycache__")).unwrap();
        std::fs::write(src.path().join("pkg/mod.py"), "x = 1\n").unwrap();
        std::fs::write(src.path().join("pkg/__pycache__/mod.pyc"), "junk").unwrap();
        std::fs::create_dir_all(src.path().join(".venv/bin")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let archive = out.path().join("e.tar.gz");
        assert_eq!(pack(src.path(), &archive).unwrap(), 2);
        let dest = out.path().join("unpacked");
        unpack(&archive, &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("pkg/mod.py")).unwrap(),
            "x = 1\n"
        );
        assert!(!dest.join(".venv").exists());
        assert!(!dest.join("pkg/__pycache__").exists());
        // Links are refused even when each looks harmless: `a -> .` then `a/l -> ..` would
        // resolve outside.
        refused(tar_gz(|b| {
            link(b, tar::EntryType::Symlink, "a", ".");
            link(b, tar::EntryType::Symlink, "a/l", "..");
        }));
        refused(tar_gz(|b| {
            file(b, "a/data.txt", b"d");
            link(b, tar::EntryType::Symlink, "a/alias", "data.txt");
        }));
    }
}
