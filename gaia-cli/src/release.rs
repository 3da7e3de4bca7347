//! `gaia release`: publish, list, promote, yank, and make signing keys.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gaia_core::release::{self, EXPERIMENTS_ARCHIVE};

use crate::common::{Conn, fmt_time, print_json, print_table};
use crate::exit;

#[derive(clap::Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Upload files to a release (created on first upload). Binaries are named `gaia` on the
    /// server; their platform is read from the file unless --platform is given.
    #[command(after_help = "Examples:
  gaia release upload --tag v0.5.0 target/release/gaia
  gaia release upload --tag v0.5.0 --experiments experiments/
  gaia release upload --tag v0.5.0 --sign release-key target/release/gaia")]
    Upload {
        #[command(flatten)]
        conn: Conn,
        /// The release tag: v + semver (v0.5.0, v0.6.0-rc.1).
        #[arg(long)]
        tag: String,
        /// Platform of the binaries (linux-x86_64, linux-aarch64, windows-x86_64, macos-aarch64, ...).
        #[arg(long)]
        platform: Option<String>,
        /// Pack this experiments folder into experiments.tar.gz and upload it too.
        #[arg(long)]
        experiments: Option<PathBuf>,
        /// Sign every file with this secret key (from `gaia release keygen`).
        #[arg(long)]
        sign: Option<PathBuf>,
        /// Binaries to upload.
        files: Vec<PathBuf>,
    },
    /// List releases: files, sizes, SHA-256, signatures, workers on each version.
    List {
        #[command(flatten)]
        conn: Conn,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a release the one workers run (workers with --auto-update move to it between jobs).
    Promote {
        #[command(flatten)]
        conn: Conn,
        tag: String,
    },
    /// Withdraw a release: workers go back to the release promoted before it.
    Yank {
        #[command(flatten)]
        conn: Conn,
        tag: String,
    },
    /// Make an ed25519 key pair for signing releases: <out> (secret, mode 0600) and <out>.pub.
    Keygen {
        /// Path of the secret key; the public key goes to <out>.pub.
        #[arg(long, default_value = "release-key")]
        out: PathBuf,
    },
}

fn read_key(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key {}", path.display()))?
        .trim()
        .to_string())
}

pub fn run(a: ReleaseArgs) -> anyhow::Result<i32> {
    match a.cmd {
        Cmd::Upload {
            conn,
            tag,
            platform,
            experiments,
            sign,
            files,
        } => {
            release::validate_tag(&tag)?;
            if files.is_empty() && experiments.is_none() {
                anyhow::bail!("nothing to upload: give binaries and/or --experiments DIR");
            }
            let client = conn.client()?;
            let secret = sign.as_deref().map(read_key).transpose()?;
            let mut uploads: Vec<(String, PathBuf, Option<String>)> = Vec::new();
            let tmp = tempdir_for_pack()?;
            let _cleanup = RemoveOnDrop(tmp.clone());
            for f in &files {
                if !f.is_file() {
                    anyhow::bail!("{} is not a file", f.display());
                }
                uploads.push(("gaia".into(), f.clone(), platform.clone()));
            }
            if uploads.iter().filter(|u| u.0 == "gaia").count() > 1 {
                // Several binaries: name each after its platform so they sit side by side.
                for u in uploads.iter_mut() {
                    let head = read_head(&u.1)?;
                    let p =
                        u.2.clone()
                            .or_else(|| release::detect_platform(&head))
                            .with_context(|| {
                                format!(
                                    "cannot tell the platform of {}; pass --platform",
                                    u.1.display()
                                )
                            })?;
                    u.0 = format!("gaia-{p}");
                    u.2 = Some(p);
                }
            }
            if let Some(dir) = &experiments {
                let out = tmp.join(EXPERIMENTS_ARCHIVE);
                let n = release::archive::pack(dir, &out)
                    .with_context(|| format!("cannot pack {}", dir.display()))?;
                eprintln!(
                    "packed {} files of {} into {EXPERIMENTS_ARCHIVE}",
                    n,
                    dir.display()
                );
                uploads.push((
                    EXPERIMENTS_ARCHIVE.into(),
                    out,
                    Some(release::ANY_PLATFORM.into()),
                ));
            }
            for (name, path, plat) in uploads {
                let signature = match &secret {
                    Some(key) => {
                        let (sha, _) = release::sha256_file(&path)?;
                        Some(release::sign(key, &tag, &name, &sha).map_err(anyhow::Error::msg)?)
                    }
                    None => None,
                };
                let f = match client.upload_release_file(
                    &tag,
                    &name,
                    &path,
                    plat.as_deref(),
                    signature.as_deref(),
                ) {
                    Ok(f) => f,
                    Err(gaia_core::error::ClientError::Status {
                        status: 413,
                        message,
                        ..
                    }) => {
                        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        anyhow::bail!(
                            "cannot upload {} ({} MiB) to {tag}: the server refuses it as too \
                             large (413: {message}); nothing of it was stored. The server's \
                             limit is set with `gaia serve --max-release-mib`",
                            path.display(),
                            size.div_ceil(1 << 20)
                        );
                    }
                    Err(e) => return Err(e.into()),
                };
                println!(
                    "{tag}: {} ({}, {} bytes, sha256 {}){}",
                    f.name,
                    f.platform,
                    f.size,
                    f.sha256,
                    if f.signature.is_some() {
                        ", signed"
                    } else {
                        ""
                    }
                );
            }
            eprintln!("uploaded; `gaia release promote {tag}` makes workers move to it");
        }
        Cmd::List { conn, json } => {
            let list = conn.client()?.releases()?;
            if json {
                print_json(&list)?;
                return Ok(exit::OK);
            }
            let mut rows = Vec::new();
            for r in &list.releases {
                let state = if r.release.yanked {
                    "yanked"
                } else if r.promoted {
                    "promoted"
                } else {
                    ""
                };
                for (i, f) in r.release.files.iter().enumerate() {
                    rows.push(vec![
                        if i == 0 {
                            r.release.tag.clone()
                        } else {
                            String::new()
                        },
                        if i == 0 {
                            state.to_string()
                        } else {
                            String::new()
                        },
                        if i == 0 {
                            r.workers.to_string()
                        } else {
                            String::new()
                        },
                        f.name.clone(),
                        f.platform.clone(),
                        f.size.to_string(),
                        f.sha256[..16.min(f.sha256.len())].to_string(),
                        if f.signature.is_some() {
                            "signed".into()
                        } else {
                            "unsigned".into()
                        },
                        fmt_time(f.uploaded_at),
                    ]);
                }
            }
            print_table(
                &[
                    "tag",
                    "state",
                    "workers",
                    "file",
                    "platform",
                    "bytes",
                    "sha256",
                    "signature",
                    "uploaded",
                ],
                &rows,
            );
        }
        Cmd::Promote { conn, tag } => {
            conn.client()?.promote(&tag)?;
            println!("{tag} promoted: workers with --auto-update move to it between jobs");
        }
        Cmd::Yank { conn, tag } => {
            conn.client()?.yank(&tag)?;
            println!("{tag} yanked: workers go back to the release promoted before it");
        }
        Cmd::Keygen { out } => {
            let (secret, public) = release::keygen();
            let pub_path = PathBuf::from(format!("{}.pub", out.display()));
            if out.exists() || pub_path.exists() {
                anyhow::bail!(
                    "{} or {} exists; not overwriting a key",
                    out.display(),
                    pub_path.display()
                );
            }
            write_private(&out, &secret)?;
            std::fs::write(&pub_path, format!("{public}\n"))?;
            println!("secret key: {} (keep it safe)", out.display());
            println!(
                "public key: {} (give it to workers: gaia work --trust-key {})",
                pub_path.display(),
                pub_path.display()
            );
        }
    }
    Ok(exit::OK)
}

fn read_head(p: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; 64];
    let n = std::fs::File::open(p)?.read(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Removes a folder when dropped: the packed archive goes away on errors too.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_for_pack() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "gaia-release-{}-{}",
        std::process::id(),
        gaia_core::model::now_ms()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(format!("{text}\n").as_bytes())?;
    Ok(())
}
