//! `gaia release`: publish, list, promote, yank, and make signing keys.

use std::path::PathBuf;

use gaia_core::release::{self, EXPERIMENTS_ARCHIVE};

use gaia_core::human;

use crate::common::{Conn, print_json, print_table};
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
            let secret = sign
                .as_deref()
                .map(release::publish::read_key)
                .transpose()?;
            let bundle = release::publish::bundle(
                &tag,
                &files,
                platform.as_deref(),
                experiments.as_deref(),
                secret.as_deref(),
            )?;
            if let (Some(n), Some(dir)) = (bundle.packed, &experiments) {
                eprintln!(
                    "packed {n} files of {} into {EXPERIMENTS_ARCHIVE}",
                    dir.display()
                );
            }
            let client = conn.client()?;
            for u in &bundle.uploads {
                let f = match client.upload_release_file(
                    &tag,
                    &u.name,
                    &u.path,
                    u.platform.as_deref(),
                    u.signature.as_deref(),
                ) {
                    Ok(f) => f,
                    Err(gaia_core::error::ClientError::Status {
                        status: 413,
                        message,
                        ..
                    }) => {
                        let size = std::fs::metadata(&u.path).map(|m| m.len()).unwrap_or(0);
                        anyhow::bail!(
                            "cannot upload {} ({} MiB) to {tag}: the server refuses it as too \
                             large (413: {message}); nothing of it was stored. The server's \
                             limit is set with `gaia serve --max-release-mib`",
                            u.path.display(),
                            size.div_ceil(1 << 20)
                        );
                    }
                    Err(e) => return Err(e.into()),
                };
                println!(
                    "{tag}: {} ({}, {}, sha256 {}){}",
                    f.name,
                    f.platform,
                    human::bytes(f.size),
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
                            human::count(r.workers)
                        } else {
                            String::new()
                        },
                        f.name.clone(),
                        f.platform.clone(),
                        human::bytes(f.size),
                        f.sha256[..16.min(f.sha256.len())].to_string(),
                        if f.signature.is_some() {
                            "signed".into()
                        } else {
                            "unsigned".into()
                        },
                        human::time(f.uploaded_at),
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
                    "size",
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
            let public = release::publish::write_key_pair(&out)?;
            println!("secret key: {} (keep it safe)", out.display());
            println!(
                "public key: {} (give it to workers: gaia work --trust-key {})",
                public.display(),
                public.display()
            );
        }
    }
    Ok(exit::OK)
}
