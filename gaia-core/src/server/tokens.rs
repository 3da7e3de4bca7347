//! Tokens: create, list and revoke API tokens; and who the caller is (`whoami`).
//!
//! An admin token manages every token. A `submit` token manages its own user's: it makes
//! `read` and `submit` tokens for that user, lists and revokes theirs (the router refuses
//! another user's token by name).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::App;
use super::auth::{Caller, actor_of, audit_name};
use super::http::{HResult, HttpError, Query, json, ok, parse_json, read_body};
use crate::model::{ADMIN_USER, Scope, TokenInfo, now_ms, validate_name};
use crate::protocol::{TokenCreate, TokenCreated, TokenList, WhoAmI};

pub(crate) async fn create_token(
    app: &App,
    caller: Option<&Caller>,
    req: Request<Incoming>,
) -> HResult {
    let by = actor_of(caller)?;
    let audit_as = audit_name(caller);
    let (_, body) = read_body(req).await?;
    let c: TokenCreate = parse_json(&body)?;
    validate_name("token name", &c.name)?;
    let user = c.user.clone().unwrap_or_else(|| by.user.clone());
    validate_name("user name", &user)?;
    if !by.admin {
        if user != by.user {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "a {} token of {} makes tokens only for {} (an admin token makes them for \
                     anyone)",
                    Scope::Submit,
                    by.user,
                    by.user
                ),
            ));
        }
        if !matches!(c.scope, Scope::Read | Scope::Submit) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "a {} token makes only read and submit tokens; a {} token needs an admin \
                     token",
                    Scope::Submit,
                    c.scope
                ),
            ));
        }
    }
    let token = super::auth::new_token();
    let info = TokenInfo {
        name: c.name.clone(),
        scope: c.scope,
        created_at: now_ms(),
        user: user.clone(),
    };
    let t = token.clone();
    app.store
        .write(move |tx| {
            // Tokens act for users who exist: a misspelt name must not own jobs.
            if info.user != ADMIN_USER && tx.user(&info.user)?.is_none() {
                return Err(crate::error::RequestError::NotFound(format!(
                    "user {:?} (add them first: gaia user add {})",
                    info.user, info.user
                ))
                .into());
            }
            tx.add_token(&t, &info)?;
            tx.audit(
                &audit_as,
                "token_create",
                &info.name,
                format!("scope {} for user {}", info.scope, info.user),
            )?;
            Ok(())
        })
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &TokenCreated {
            name: c.name,
            scope: c.scope,
            token,
            user,
        },
    ))
}

pub(crate) fn list_tokens(app: &App, caller: Option<&Caller>) -> HResult {
    let by = actor_of(caller)?;
    let mut tokens = app.store.read()?.tokens()?;
    if !by.admin {
        tokens.retain(|t| t.user == by.user);
    }
    ok(&TokenList { tokens })
}

pub(crate) async fn revoke_token(app: &App, name: &str, caller: Option<&Caller>) -> HResult {
    let by = audit_name(caller);
    validate_name("token name", name)?;
    let n = name.to_string();
    let removed = app
        .store
        .write(move |tx| {
            let removed = tx.revoke_token(&n)?;
            if removed {
                tx.audit(&by, "token_revoke", &n, String::new())?;
            }
            Ok(removed)
        })
        .await?;
    if !removed {
        return Err(HttpError::not_found(format!("token {name:?} not found")));
    }
    ok(&crate::protocol::Revoked {
        revoked: name.to_string(),
    })
}

pub(crate) fn whoami(app: &App, req: Request<Incoming>, q: &Query) -> HResult {
    let (parts, _) = req.into_parts();
    let token = super::auth::presented(&parts, q.get("token"))
        .ok_or_else(|| HttpError::new(StatusCode::UNAUTHORIZED, "missing token"))?;
    let caller = super::auth::identify(app, &token)
        .ok_or_else(|| HttpError::new(StatusCode::UNAUTHORIZED, "invalid token"))?;
    ok(&WhoAmI {
        scope: caller.scope,
        name: caller.name,
        user: caller.user,
        version: crate::VERSION.to_string(),
    })
}
