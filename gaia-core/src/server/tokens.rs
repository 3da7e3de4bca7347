//! Tokens: create, list and revoke API tokens; and who the caller is (`whoami`).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::App;
use super::http::{HResult, HttpError, Query, json, ok, parse_json, read_body};
use crate::model::{TokenInfo, now_ms, validate_name};
use crate::protocol::{TokenCreate, TokenCreated, TokenList, WhoAmI};

pub(crate) async fn create_token(app: &App, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let c: TokenCreate = parse_json(&body)?;
    validate_name("token name", &c.name)?;
    let token = super::auth::new_token();
    let info = TokenInfo {
        name: c.name.clone(),
        scope: c.scope,
        created_at: now_ms(),
    };
    let t = token.clone();
    app.store.write(move |tx| tx.add_token(&t, &info)).await?;
    Ok(json(
        StatusCode::CREATED,
        &TokenCreated {
            name: c.name,
            scope: c.scope,
            token,
        },
    ))
}

pub(crate) fn list_tokens(app: &App) -> HResult {
    ok(&TokenList {
        tokens: app.store.read()?.tokens()?,
    })
}

pub(crate) async fn revoke_token(app: &App, name: &str) -> HResult {
    validate_name("token name", name)?;
    let n = name.to_string();
    let removed = app.store.write(move |tx| tx.revoke_token(&n)).await?;
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
    let scope = super::auth::scope_of(app, &token)
        .ok_or_else(|| HttpError::new(StatusCode::UNAUTHORIZED, "invalid token"))?;
    let hash = super::auth::hash(&token);
    let name = if hash == app.admin_hash {
        "admin".to_string()
    } else {
        app.store
            .read()?
            .token(&hex::encode(hash))?
            .map(|t| t.name)
            .unwrap_or_default()
    };
    ok(&WhoAmI {
        scope,
        name,
        version: crate::VERSION.to_string(),
    })
}
