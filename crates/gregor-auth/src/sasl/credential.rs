//! SCRAM credentials as Kafka keeps them: per user and mechanism a salt,
//! the stored and server keys, and the iteration count, written in
//! `/config/users/<user>` as `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`
//! under the mechanism's name. Derived with RustCrypto (PBKDF2, HMAC, SHA-2).

use std::collections::HashMap;
use std::sync::RwLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::AuthError;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256` (KIP-554 type 1).
    Sha256,
    /// `SCRAM-SHA-512` (KIP-554 type 2).
    Sha512,
}

/// Kafka's bounds on a credential's iterations.
pub const MIN_ITERATIONS: i32 = 4096;
/// The most iterations Kafka accepts.
pub const MAX_ITERATIONS: i32 = 16384;

impl ScramMechanism {
    /// Both, in KIP-554's order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// Kafka's name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// KIP-554's type byte (1, 2).
    pub fn type_id(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    /// The mechanism of a KIP-554 type byte.
    pub fn from_type_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.type_id() == id)
    }

    /// `H(data)`.
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length: new_from_slice cannot fail.
        match self {
            Self::Sha256 => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Self::Sha512 => {
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Self::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// A random salt for a new credential.
pub fn random_salt() -> [u8; 32] {
    rand::random()
}

/// One user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential of a salted password (what AlterUserScramCredentials
    /// carries: clients salt the password themselves).
    pub fn from_salted_password(mechanism: ScramMechanism, salt: &[u8], salted: &[u8], iterations: i32) -> Self {
        let client_key = mechanism.hmac(salted, b"Client Key");
        Self {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, b"Server Key"),
            iterations,
        }
    }

    /// A new credential for `password` with a random salt.
    pub fn generate(mechanism: ScramMechanism, password: &str, iterations: i32) -> Self {
        let salt = random_salt();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
        Self::from_salted_password(mechanism, &salt, &salted, iterations)
    }

    /// Kafka's stored form.
    pub fn to_kafka_string(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    /// Reads Kafka's stored form.
    pub fn from_kafka_string(text: &str) -> Result<Self, AuthError> {
        let bad = |what: &str| AuthError::Config(format!("a SCRAM credential {what}: {text:?}"));
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for part in text.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| bad("field without '='"))?;
            fields.insert(k.trim(), v.trim());
        }
        let b64 = |k: &str| {
            fields
                .get(k)
                .ok_or_else(|| bad(&format!("without {k}")))
                .and_then(|v| B64.decode(v).map_err(|_| bad(&format!("with a bad {k}"))))
        };
        Ok(Self {
            salt: b64("salt")?,
            stored_key: b64("stored_key")?,
            server_key: b64("server_key")?,
            iterations: fields
                .get("iterations")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad("without iterations"))?,
        })
    }
}

/// Every user's SCRAM credentials, as the brokers' caches of
/// `/config/users` (Kafka's `CredentialCache`).
#[derive(Debug, Default)]
pub struct CredentialCache {
    by_user: RwLock<HashMap<String, HashMap<ScramMechanism, ScramCredential>>>,
}

impl CredentialCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// `user`'s credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let users = self.by_user.read().unwrap_or_else(|e| e.into_inner());
        users.get(user)?.get(&mechanism).cloned()
    }

    /// Replaces `user`'s credentials (none: the user has none).
    pub fn set_user(&self, user: &str, credentials: HashMap<ScramMechanism, ScramCredential>) {
        let mut users = self.by_user.write().unwrap_or_else(|e| e.into_inner());
        if credentials.is_empty() {
            users.remove(user);
        } else {
            users.insert(user.to_string(), credentials);
        }
    }

    /// Every user with credentials, with their mechanisms and iterations.
    pub fn users(&self) -> Vec<(String, Vec<(ScramMechanism, i32)>)> {
        let users = self.by_user.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = users
            .iter()
            .map(|(u, creds)| {
                let mut c: Vec<_> = creds.iter().map(|(m, c)| (*m, c.iterations)).collect();
                c.sort();
                (u.clone(), c)
            })
            .collect();
        out.sort();
        out
    }

    /// The credentials held in a user's config (Kafka's `/config/users/<u>`
    /// keys named by mechanisms); an unreadable one is left out (that user
    /// then fails to authenticate with that mechanism).
    pub fn credentials_of(
        config: &std::collections::BTreeMap<String, String>,
    ) -> HashMap<ScramMechanism, ScramCredential> {
        let mut out = HashMap::new();
        for (key, value) in config {
            let Some(mechanism) = ScramMechanism::from_name(key) else {
                continue;
            };
            if let Ok(c) = ScramCredential::from_kafka_string(value) {
                out.insert(mechanism, c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_stored_form_round_trips() {
        let c = ScramCredential::generate(ScramMechanism::Sha512, "secret", 4096);
        assert_eq!(c.stored_key.len(), 64);
        let text = c.to_kafka_string();
        assert!(text.starts_with("salt=") && text.ends_with(",iterations=4096"));
        assert_eq!(ScramCredential::from_kafka_string(&text).unwrap(), c);
        assert!(ScramCredential::from_kafka_string("salt=AAAA,iterations=x").is_err());
    }

    #[test]
    fn rfc7677_test_vector() {
        // RFC 7677's example: user, pencil, salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        let c = ScramCredential::from_salted_password(ScramMechanism::Sha256, &salt, &salted, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                    s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = ScramMechanism::Sha256.hmac(&c.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}
