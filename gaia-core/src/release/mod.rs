//! Releases: what the server publishes and workers update themselves from.
//!
//! A release is a semver tag (`v0.5.0`, `v0.6.0-rc.1`) with files: `gaia` binaries per platform
//! and optionally `experiments.tar.gz`. Each file's size and SHA-256 (and, when the publisher
//! signs, an ed25519 signature) are in the release's metadata; a worker checks them before it
//! replaces anything. The promoted release is the one workers run; yanking it rolls them back
//! to the release promoted before it.
//!
//! | module | owns |
//! |---|---|
//! | [`archive`] | packing the experiments folder; unpacking it without letting anything escape |
//! | [`publish`] | the publisher's side: the files of an upload (named, packed, signed); key files |
//! | [`update`] | the worker side: download, verify, self-check, replace, re-exec, roll back |

pub mod archive;
pub mod publish;
pub mod update;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RequestError;
use crate::model::Millis;

/// Name of the experiments archive inside a release.
pub const EXPERIMENTS_ARCHIVE: &str = "experiments.tar.gz";
/// Platform of files that run anywhere (the experiments archive).
pub const ANY_PLATFORM: &str = "any";

/// One file of a release.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ReleaseFile {
    pub name: String,
    /// `linux-x86_64`, `linux-aarch64`, `windows-x86_64`, `macos-aarch64`, ..., or `any`.
    pub platform: String,
    pub size: u64,
    pub sha256: String,
    /// ed25519 signature (hex) of [`signed_message`], if the publisher signed.
    #[serde(default)]
    pub signature: Option<String>,
    pub uploaded_at: Millis,
    pub uploaded_by: String,
}

/// A release and its files.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Release {
    pub tag: String,
    pub created_at: Millis,
    pub files: Vec<ReleaseFile>,
    /// Order of promotion; the non-yanked release with the highest is the promoted one.
    #[serde(default)]
    pub promoted_seq: Option<u64>,
    #[serde(default)]
    pub yanked: bool,
}

/// A release in `GET /api/v1/releases`, with how many workers run it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct ReleaseSummary {
    #[serde(flatten)]
    pub release: Release,
    pub promoted: bool,
    pub workers: u64,
}

/// `GET /api/v1/releases` answer, newest first.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct ReleaseList {
    pub releases: Vec<ReleaseSummary>,
    pub promoted: Option<String>,
}

/// A worker's report about an update (`POST /api/v1/workers/{id}/report`).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct UpdateReport {
    pub tag: String,
    /// False: the update was refused (the message says why).
    pub ok: bool,
    pub message: String,
}

/// Checks a release tag: `v` + semver, at most 64 characters.
pub fn validate_tag(tag: &str) -> Result<semver::Version, RequestError> {
    let bad = || {
        RequestError::Invalid(format!(
            "invalid release tag {tag:?}: use v + a semantic version, like v0.5.0 or v0.6.0-rc.1"
        ))
    };
    if tag.len() > 64
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
    {
        return Err(bad());
    }
    let v = tag.strip_prefix('v').ok_or_else(bad)?;
    semver::Version::parse(v).map_err(|_| bad())
}

/// Checks a platform name.
/// Operating systems and architectures as Rust names them (`std::env::consts`), which is how a
/// worker names its own platform ([`this_platform`]).
const OSES: &[&str] = &[
    "linux",
    "macos",
    "windows",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
    "android",
];
const ARCHES: &[&str] = &[
    "x86_64",
    "aarch64",
    "x86",
    "arm",
    "riscv64",
    "powerpc64",
    "s390x",
    "loongarch64",
    "mips64",
];

/// Checks a release file's platform: `any`, or `<os>-<arch>` that a worker could have
/// (`linux-x86_64`, not `x86_64-linux`, which no worker would ever match).
pub fn validate_platform(p: &str) -> Result<(), RequestError> {
    crate::model::validate_name("platform", p)?;
    if p == ANY_PLATFORM {
        return Ok(());
    }
    match p.split_once('-') {
        Some((os, arch)) if OSES.contains(&os) && ARCHES.contains(&arch) => Ok(()),
        _ => Err(RequestError::Invalid(format!(
            "platform {p:?} is not <os>-<arch> as workers name theirs (e.g. linux-x86_64, \
             linux-aarch64, macos-aarch64, windows-x86_64; this server is {})",
            this_platform()
        ))),
    }
}

/// The platform this build runs on, as release files name it.
pub fn this_platform() -> String {
    let os = std::env::consts::OS;
    format!("{os}-{}", std::env::consts::ARCH)
}

/// Tells a binary's platform from its first bytes (ELF, PE, Mach-O).
pub fn detect_platform(head: &[u8]) -> Option<String> {
    if head.len() >= 20 && head.starts_with(b"\x7fELF") {
        let little = head[5] == 1;
        let machine = if little {
            u16::from_le_bytes([head[18], head[19]])
        } else {
            u16::from_be_bytes([head[18], head[19]])
        };
        let arch = match machine {
            0x3E => "x86_64",
            0xB7 => "aarch64",
            0x03 => "x86",
            0x28 => "arm",
            0xF3 => "riscv64",
            _ => return None,
        };
        return Some(format!("linux-{arch}"));
    }
    if head.starts_with(b"MZ") {
        return Some("windows-x86_64".into());
    }
    if head.len() >= 8 && (head[..4] == [0xCF, 0xFA, 0xED, 0xFE]) {
        let cpu = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let arch = match cpu {
            0x0100_0007 => "x86_64",
            0x0100_000C => "aarch64",
            _ => return None,
        };
        return Some(format!("macos-{arch}"));
    }
    None
}

/// What a release signature signs: the tag, the file name and its SHA-256, so a signature cannot
/// be moved to another file or release.
pub fn signed_message(tag: &str, name: &str, sha256: &str) -> Vec<u8> {
    format!("gaia-release-v1\n{tag}\n{name}\n{sha256}\n").into_bytes()
}

/// A new ed25519 key pair: (secret key hex, public key hex).
pub fn keygen() -> (String, String) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source works");
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    (
        hex::encode(seed),
        hex::encode(key.verifying_key().to_bytes()),
    )
}

fn key_bytes<const N: usize>(hex_text: &str, what: &str) -> Result<[u8; N], String> {
    let raw = hex::decode(hex_text.trim()).map_err(|_| format!("{what} is not hex"))?;
    raw.try_into()
        .map_err(|_| format!("{what} must be {N} bytes"))
}

/// Signs a release file with a secret key (hex); returns the signature (hex).
pub fn sign(secret_hex: &str, tag: &str, name: &str, sha256: &str) -> Result<String, String> {
    use ed25519_dalek::Signer;
    let key =
        ed25519_dalek::SigningKey::from_bytes(&key_bytes::<32>(secret_hex, "the release key")?);
    Ok(hex::encode(
        key.sign(&signed_message(tag, name, sha256)).to_bytes(),
    ))
}

/// Verifies a release file's signature with a public key (hex).
pub fn verify(
    public_hex: &str,
    tag: &str,
    name: &str,
    sha256: &str,
    signature_hex: &str,
) -> Result<(), String> {
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&key_bytes::<32>(public_hex, "the trusted key")?)
            .map_err(|e| format!("the trusted key is not a valid ed25519 key: {e}"))?;
    let sig =
        ed25519_dalek::Signature::from_bytes(&key_bytes::<64>(signature_hex, "the signature")?);
    key.verify_strict(&signed_message(tag, name, sha256), &sig)
        .map_err(|_| "the signature does not match the trusted key".to_string())
}

/// SHA-256 of a file, hex, and its size.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// True when a worker running `version` should move to the promoted `tag` (any difference:
/// newer is an update, older is a rollback after a yank).
pub fn differs(tag: &str, version: &str) -> bool {
    tag.trim_start_matches('v') != version.trim_start_matches('v')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_semver() {
        assert!(validate_tag("v0.5.0").is_ok());
        assert!(validate_tag("v0.6.0-rc.1").is_ok());
        for bad in ["0.5.0", "v0.5", "v../x", "v0.5.0/../../etc", "", "vx.y.z"] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        assert!(validate_tag("v0.6.0-rc.1").unwrap() < validate_tag("v0.6.0").unwrap());
    }

    #[test]
    fn platforms_are_the_names_workers_look_for() {
        for ok in [
            "linux-x86_64",
            "linux-aarch64",
            "macos-aarch64",
            "windows-x86_64",
            "any",
        ] {
            validate_platform(ok).unwrap();
        }
        validate_platform(&this_platform()).unwrap();
        for bad in [
            "x86_64-linux",
            "linux",
            "linux-amd64",
            "../x",
            "Linux-x86_64",
        ] {
            assert!(validate_platform(bad).is_err(), "{bad} accepted");
        }
        let msg = validate_platform("x86_64-linux").unwrap_err().to_string();
        assert!(msg.contains("linux-x86_64"), "{msg}");
    }

    #[test]
    fn platforms_from_headers() {
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        elf.resize(20, 0);
        elf[18] = 0x3E;
        assert_eq!(detect_platform(&elf).as_deref(), Some("linux-x86_64"));
        elf[18] = 0xB7;
        assert_eq!(detect_platform(&elf).as_deref(), Some("linux-aarch64"));
        assert_eq!(
            detect_platform(b"MZ\x90\x00").as_deref(),
            Some("windows-x86_64")
        );
        assert_eq!(detect_platform(b"#!/bin/sh"), None);
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(detect_platform(&exe[..64]).unwrap(), this_platform());
    }

    #[test]
    fn signatures_bind_tag_name_and_hash() {
        let (secret, public) = keygen();
        let sig = sign(&secret, "v1.0.0", "gaia", "abc").unwrap();
        assert!(verify(&public, "v1.0.0", "gaia", "abc", &sig).is_ok());
        assert!(verify(&public, "v1.0.1", "gaia", "abc", &sig).is_err());
        assert!(verify(&public, "v1.0.0", "gaia", "abd", &sig).is_err());
        let (_, other) = keygen();
        assert!(verify(&other, "v1.0.0", "gaia", "abc", &sig).is_err());
        assert!(verify(&public, "v1.0.0", "gaia", "abc", "zz").is_err());
    }
}
