//! SCRAM credentials (KIP-554) kept where Kafka keeps them: the
//! mechanism-named keys of `/config/users/<user>`, beside the user's client
//! quotas (the same store and change notifications). The broker's
//! [`CredentialCache`] follows them; SASL listeners authenticate from it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use gregor_auth::sasl::{CredentialCache, ScramCredential, ScramMechanism};

use crate::quotas::entity::{desanitize, sanitize};
use crate::quotas::QuotaStore;

/// The broker's SCRAM credentials.
#[derive(Default)]
pub struct ScramCredentials {
    cache: OnceLock<Arc<CredentialCache>>,
    store: OnceLock<Arc<dyn QuotaStore>>,
}

/// A refused credential change or description, with Kafka's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRefusal {
    /// Kafka's error code.
    pub code: i16,
    /// The message.
    pub message: String,
}

impl ScramCredentials {
    /// The cache SASL listeners authenticate from.
    pub fn cache(&self) -> Arc<CredentialCache> {
        self.cache.get_or_init(Default::default).clone()
    }

    /// Where credentials are kept (coordination), and the cache to keep
    /// them in (the one the listeners were given, unless a cache is in use
    /// already); loads every user's. Blocks: call it off the runtime.
    pub fn attach_store(&self, store: Arc<dyn QuotaStore>, cache: Arc<CredentialCache>) -> Result<(), String> {
        let _ = self.cache.set(cache);
        for (path, config) in store.all()? {
            if let Some(user) = user_of(&path) {
                self.cache().set_user(&user, CredentialCache::credentials_of(&config));
            }
        }
        let _ = self.store.set(store);
        Ok(())
    }

    /// Re-reads one user's credentials (a change notification named
    /// `users/<user>`).
    pub fn reload(&self, entity_path: &str) -> Result<(), String> {
        let (Some(store), Some(user)) = (self.store.get(), user_of(entity_path)) else {
            return Ok(());
        };
        let config = store.config(entity_path)?;
        self.cache().set_user(&user, CredentialCache::credentials_of(&config));
        Ok(())
    }

    /// Sets (`Some`) or deletes (`None`) `user`'s credential for
    /// `mechanism`, keeping the user's other configs (quotas).
    pub fn alter(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: Option<ScramCredential>,
    ) -> Result<(), CredentialRefusal> {
        let store = self.store.get().ok_or_else(|| CredentialRefusal {
            code: UNKNOWN_SERVER_ERROR,
            message: "credentials are not kept on this broker (no coordination store)".into(),
        })?;
        let path = format!("users/{}", sanitize(user));
        let unknown = |e: String| CredentialRefusal {
            code: UNKNOWN_SERVER_ERROR,
            message: e,
        };
        let mut config: BTreeMap<String, String> = store.config(&path).map_err(unknown)?;
        match credential {
            Some(c) => {
                config.insert(mechanism.name().to_string(), c.to_kafka_string());
            }
            None => {
                if config.remove(mechanism.name()).is_none() {
                    return Err(CredentialRefusal {
                        code: RESOURCE_NOT_FOUND,
                        message: "Attempt to delete a user credential that does not exist".into(),
                    });
                }
            }
        }
        store.set(&path, &config).map_err(unknown)?;
        self.cache().set_user(user, CredentialCache::credentials_of(&config));
        Ok(())
    }

    /// Every user with credentials: (user, [(mechanism, iterations)]).
    pub fn describe_all(&self) -> Vec<(String, Vec<(ScramMechanism, i32)>)> {
        self.cache().users()
    }

    /// One user's mechanisms and iterations, or RESOURCE_NOT_FOUND.
    pub fn describe(&self, user: &str) -> Result<Vec<(ScramMechanism, i32)>, CredentialRefusal> {
        self.cache()
            .users()
            .into_iter()
            .find(|(u, _)| u == user)
            .map(|(_, c)| c)
            .ok_or_else(|| CredentialRefusal {
                code: RESOURCE_NOT_FOUND,
                message: "Attempt to describe a user credential that does not exist".into(),
            })
    }
}

/// Kafka's UNKNOWN_SERVER_ERROR.
const UNKNOWN_SERVER_ERROR: i16 = -1;
/// Kafka's RESOURCE_NOT_FOUND.
const RESOURCE_NOT_FOUND: i16 = 91;

/// The user a `users/<sanitized>` entity path names (not its clients').
fn user_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("users/")?;
    if rest.contains('/') || rest == "<default>" {
        return None;
    }
    desanitize(rest)
}
