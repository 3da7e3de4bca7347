//! API tokens. Only the SHA-256 of a token is stored; the secret is shown once at creation.

use redb::{ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

use super::{Reader, Tx, from_json, to_json};
use crate::error::{Error, RequestError, StoreError};
use crate::model::TokenInfo;

/// SHA-256 of the token, hex → who it is and what it may do, JSON.
pub(crate) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tx<'_> {
    /// Stores a new token; names are unique.
    pub fn add_token(&mut self, token: &str, info: &TokenInfo) -> Result<(), Error> {
        let existing = self.token_by_name(&info.name)?;
        if existing.is_some() {
            return Err(
                RequestError::Conflict(format!("a token named {:?} exists", info.name)).into(),
            );
        }
        let hash = token_hash(token);
        self.tokens
            .open_mut()?
            .insert(hash.as_str(), to_json(info).as_slice())
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn token_by_name(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        for entry in self.tokens.open()?.iter()? {
            let (k, v) = entry?;
            let info: TokenInfo = from_json("token", v.value())?;
            if info.name == name {
                return Ok(Some(k.value().to_string()));
            }
        }
        Ok(None)
    }

    /// The names of every token acting for `user`.
    pub fn tokens_of(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tokens.open()?.iter()? {
            let (_, v) = entry?;
            let info: TokenInfo = from_json("token", v.value())?;
            if info.user == user {
                out.push(info.name);
            }
        }
        Ok(out)
    }

    /// Removes the token with this name; false if there was none.
    pub fn revoke_token(&mut self, name: &str) -> Result<bool, Error> {
        match self.token_by_name(name)? {
            None => Ok(false),
            Some(hash) => {
                self.tokens
                    .open_mut()?
                    .remove(hash.as_str())
                    .map_err(StoreError::from)?;
                Ok(true)
            }
        }
    }
}

impl Reader {
    /// The token with this SHA-256, if any.
    pub fn token(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.tokens
            .open()?
            .get(hash)?
            .map(|v| from_json("token", v.value()))
            .transpose()
    }

    /// Every stored token (without secrets).
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tokens.open()?.iter()? {
            let (_, v) = entry?;
            out.push(from_json("token", v.value())?);
        }
        out.sort_by(|a: &TokenInfo, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
