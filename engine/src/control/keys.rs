//! API keys: `sb_<id>_<secret>`. The id is not secret: it names the key in
//! listings and finds its row, so checking a key costs one argon2
//! verification. Only the argon2id hash of the whole key is stored; the key
//! itself is shown once, when created.
//!
//! Verified keys are remembered for a few minutes by the SHA-256 of the key
//! (never the key), so a busy client does not pay argon2 on every request.
//! Deleting a key forgets it at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use tracing::info;

use super::names::{check_name, NameKind};
use super::{now_ms, Control, ControlError, Result};
use crate::storage::{ApiKeyInfo, Role, StoredKey};

/// The environment variable that gives the first admin key.
pub const ADMIN_KEY_ENV: &str = "SWITCHBOARD_ADMIN_KEY";
/// Shortest key accepted from outside (`SWITCHBOARD_ADMIN_KEY`).
pub const MIN_KEY_LEN: usize = 24;
/// Longest `Authorization` value worth looking at.
const MAX_KEY_LEN: usize = 256;
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;
/// How long a verified key is trusted without argon2.
const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;

/// Who is calling: the key, its account and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub account: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this API key is not valid")]
    Invalid,
    #[error("storage: {0}")]
    Storage(String),
}

/// The id of `key`: the `<id>` of `sb_<id>_<secret>`, or for a key of
/// another shape (one given in `SWITCHBOARD_ADMIN_KEY`), `env` and the start
/// of its SHA-256.
pub fn key_id(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("sb_") {
        if let Some((id, secret)) = rest.split_once('_') {
            if id.len() == ID_LEN
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && !secret.is_empty()
            {
                return id.to_string();
            }
        }
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("env{}", &hex[..ID_LEN - 3])
}

fn generate_key() -> String {
    let mut rng = rand::rng();
    let id = Alphanumeric
        .sample_string(&mut rng, ID_LEN)
        .to_ascii_lowercase();
    let secret = Alphanumeric.sample_string(&mut rng, SECRET_LEN);
    format!("sb_{id}_{secret}")
}

fn hash_key(key: &str) -> Result<String> {
    Argon2::default()
        .hash_password(key.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| ControlError::BadRequest(format!("cannot hash the key: {e}")))
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Equal without an early exit, so timing says nothing about where two
/// digests differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Cached {
    digest: [u8; 32],
    principal: Principal,
    verified_at: Instant,
}

#[derive(Default)]
pub(super) struct KeyCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl KeyCache {
    fn get(&self, id: &str, digest: &[u8; 32]) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let cached = entries.get(id)?;
        (cached.verified_at.elapsed() < CACHE_TTL && same_digest(&cached.digest, digest))
            .then(|| cached.principal.clone())
    }

    fn put(&self, digest: [u8; 32], principal: Principal) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, c| c.verified_at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(
            principal.key_id.clone(),
            Cached {
                digest,
                principal,
                verified_at: Instant::now(),
            },
        );
    }

    fn forget(&self, id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub(super) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Control {
    /// Who `key` belongs to.
    pub async fn authenticate(&self, key: &str) -> std::result::Result<Principal, AuthError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(AuthError::Invalid);
        }
        let id = key_id(key);
        let digest = digest(key);
        if let Some(principal) = self.inner.keys.get(&id, &digest) {
            return Ok(principal);
        }
        let stored = self
            .storage()
            .key(&id)
            .await
            .map_err(|e| AuthError::Storage(e.to_string()))?
            .ok_or(AuthError::Invalid)?;
        let key = key.to_string();
        let hash = stored.hash.clone();
        let valid = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(key.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(|e| AuthError::Storage(e.to_string()))?;
        if !valid {
            return Err(AuthError::Invalid);
        }
        let principal = Principal {
            key_id: stored.info.id,
            account: stored.info.account,
            role: stored.info.role,
        };
        self.inner.keys.put(digest, principal.clone());
        Ok(principal)
    }

    /// A new key for `account`; the returned string is the only copy of it.
    pub async fn create_key(
        &self,
        account: &str,
        role: Role,
        name: &str,
    ) -> Result<(ApiKeyInfo, String)> {
        check_name(NameKind::Key, name)?;
        if self.storage().account(account).await?.is_none() {
            return Err(ControlError::NotFound(format!("no account {account}")));
        }
        let key = generate_key();
        let info = self.store_key(account, role, name, &key).await?;
        info!(key = %info.id, account, role = role.as_str(), "API key created");
        Ok((info, key))
    }

    /// Stores a key given from outside (`SWITCHBOARD_ADMIN_KEY`), unless a
    /// key with its id is already stored. Returns whether it was added.
    pub async fn import_key(
        &self,
        account: &str,
        role: Role,
        name: &str,
        key: &str,
    ) -> Result<bool> {
        if key.len() < MIN_KEY_LEN || key.len() > MAX_KEY_LEN {
            return Err(ControlError::BadRequest(format!(
                "an API key must be {MIN_KEY_LEN} to {MAX_KEY_LEN} characters"
            )));
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ControlError::BadRequest(
                "an API key cannot contain spaces or control characters".into(),
            ));
        }
        if self.storage().key(&key_id(key)).await?.is_some() {
            return Ok(false);
        }
        self.store_key(account, role, name, key).await?;
        Ok(true)
    }

    async fn store_key(
        &self,
        account: &str,
        role: Role,
        name: &str,
        key: &str,
    ) -> Result<ApiKeyInfo> {
        let key_owned = key.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_key(&key_owned))
            .await
            .map_err(|e| ControlError::BadRequest(e.to_string()))??;
        let info = ApiKeyInfo {
            id: key_id(key),
            account: account.to_string(),
            role,
            name: name.to_string(),
            created_at: now_ms(),
        };
        self.storage()
            .create_key(StoredKey {
                info: info.clone(),
                hash,
            })
            .await?;
        Ok(info)
    }

    /// Deletes a key; it stops working at once.
    pub async fn delete_key(&self, id: &str) -> Result<()> {
        if !self.storage().delete_key(id).await? {
            return Err(ControlError::NotFound(format!("no key {id}")));
        }
        self.inner.keys.forget(id);
        info!(key = id, "API key deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_key() {
        let key = generate_key();
        assert!(key.starts_with("sb_"));
        let id = key_id(&key);
        assert_eq!(id.len(), ID_LEN);
        assert_eq!(&key[3..3 + ID_LEN], id);
        let other = key_id("a-long-operator-chosen-admin-key");
        assert!(other.starts_with("env"));
        assert_eq!(other.len(), ID_LEN);
        assert_eq!(other, key_id("a-long-operator-chosen-admin-key"));
        assert_ne!(generate_key(), key);
    }

    #[test]
    fn hashes_verify_only_their_key() {
        let key = generate_key();
        let hash = hash_key(&key).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains(&key[3 + ID_LEN + 1..]));
        let argon = Argon2::default();
        assert!(argon.verify_password(key.as_bytes(), hash.as_str()).is_ok());
        assert!(argon
            .verify_password(b"sb_wrongwrongw_nope", hash.as_str())
            .is_err());
    }

    #[test]
    fn digests_compare() {
        let a = digest("x");
        assert!(same_digest(&a, &digest("x")));
        assert!(!same_digest(&a, &digest("y")));
    }
}
