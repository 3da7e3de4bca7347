//! Bearer tokens and scopes.
//!
//! The admin token is compared in constant time (on SHA-256 digests, so lengths leak nothing);
//! other tokens are looked up by their SHA-256 in the store, so the secret is never stored.

use std::path::Path;

use hyper::header;
use hyper::http::request::Parts;
use sha2::{Digest, Sha256};

use super::App;
use crate::error::Error;
use crate::model::{ADMIN_USER, Actor, Scope};

/// File in the data dir that keeps a generated admin token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimiser from short-circuiting the loop.
    std::hint::black_box(diff) == 0
}

/// A fresh random token: 32 bytes from the OS, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source works");
    hex::encode(b)
}

/// The admin token kept in `data_dir`, creating it (mode 0600) if there is none. Returns the
/// token and whether it was created now.
pub fn load_or_create_admin_token(data_dir: &Path) -> Result<(String, bool), Error> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&path, e)),
    }
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let token = new_token();
    let tmp = data_dir.join(format!(".{ADMIN_TOKEN_FILE}.tmp"));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(format!("{token}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok((token, true))
}

/// The token a request carries: `Authorization: Bearer T`, or `?token=T` (for EventSource and
/// download links, which cannot set headers; the router passes it for GET and HEAD only).
pub(crate) fn presented(parts: &Parts, query_token: Option<&str>) -> Option<String> {
    if let Some(v) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        // The scheme is case-insensitive (RFC 9110 §11.1) and may be followed by several spaces.
        let (scheme, token) = v.trim().split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        return (!token.is_empty()).then(|| token.to_string());
    }
    query_token.map(str::to_string)
}

/// Who is calling: the token's scope and name (`admin` for the server's admin token), and the
/// user it acts for. Handlers find it in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub scope: Scope,
    pub name: String,
    pub user: String,
}

impl Caller {
    /// The caller as the queue sees it: their user, and whether they may act on what others
    /// own (an admin token).
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.user.clone(),
            admin: self.scope == Scope::Admin,
        }
    }
}

/// The caller a presented token stands for, if it is valid.
pub(crate) fn identify(app: &App, token: &str) -> Option<Caller> {
    let h = hash(token);
    if constant_time_eq(&h, &app.admin_hash) {
        return Some(Caller {
            scope: Scope::Admin,
            name: "admin".into(),
            user: ADMIN_USER.into(),
        });
    }
    let read = app.store.read().ok()?;
    read.token(&hex::encode(h)).ok().flatten().map(|t| Caller {
        scope: t.scope,
        name: t.name,
        user: t.user,
    })
}

/// The actor behind a scoped route's caller (the router always sets one there).
pub(crate) fn actor_of(caller: Option<&Caller>) -> Result<Actor, super::http::HttpError> {
    caller.map(Caller::actor).ok_or_else(|| {
        super::http::HttpError::new(hyper::StatusCode::UNAUTHORIZED, "missing token")
    })
}

/// The name the audit log records for a caller: the token's name (`admin` for the server's
/// admin token).
pub(crate) fn audit_name(caller: Option<&Caller>) -> String {
    caller.map_or_else(|| "unknown".into(), |c| c.name.clone())
}

/// Whether a token of scope `have` may call a route that needs `need` ([`Scope::allows`]).
pub(crate) fn allows(have: Scope, need: Scope) -> bool {
    have.allows(need)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, created) = load_or_create_admin_token(dir.path()).unwrap();
        assert!(created);
        let (t2, created2) = load_or_create_admin_token(dir.path()).unwrap();
        assert!(!created2);
        assert_eq!(t1, t2);
        assert_eq!(t1.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(ADMIN_TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_authorization_scheme_is_case_insensitive() {
        let presented_with = |v: &str| {
            let req = hyper::Request::builder()
                .header(header::AUTHORIZATION, v)
                .body(())
                .unwrap();
            presented(&req.into_parts().0, None)
        };
        for v in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "BeArEr   abc ",
            "Bearer\tabc",
        ] {
            assert_eq!(presented_with(v).as_deref(), Some("abc"), "{v:?}");
        }
        for v in ["Basic abc", "Bearerabc", "Bearer ", "abc"] {
            assert_eq!(presented_with(v), None, "{v:?}");
        }
    }

    #[test]
    fn scopes() {
        assert!(allows(Scope::Admin, Scope::Worker));
        assert!(allows(Scope::Read, Scope::Read));
        assert!(!allows(Scope::Read, Scope::Admin));
        assert!(!allows(Scope::Worker, Scope::Admin));
        assert!(!allows(Scope::Worker, Scope::Read));
        // Submit sits between read and admin, beside worker.
        assert!(allows(Scope::Submit, Scope::Read));
        assert!(allows(Scope::Submit, Scope::Submit));
        assert!(allows(Scope::Admin, Scope::Submit));
        assert!(!allows(Scope::Submit, Scope::Admin));
        assert!(!allows(Scope::Submit, Scope::Worker));
        assert!(!allows(Scope::Read, Scope::Submit));
        assert!(!allows(Scope::Worker, Scope::Submit));
    }
}
