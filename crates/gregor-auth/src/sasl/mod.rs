//! SASL authentication, as Kafka's `SaslServerAuthenticator` runs it on a
//! SASL_PLAINTEXT or SASL_SSL listener: a SaslHandshake picks one of the
//! listener's mechanisms (`sasl.enabled.mechanisms`), then SaslAuthenticate
//! tokens go through that mechanism's exchange until it succeeds (the
//! connection's principal becomes `User:<name>`) or fails.
//!
//! Sans-IO: the network layer reads the requests and writes the answers.

pub mod client;
pub mod credential;
pub mod jaas;
pub mod plain;
pub mod scram;

use std::collections::HashMap;
use std::sync::Arc;

pub use client::SaslClient;
pub use credential::{CredentialCache, ScramCredential, ScramMechanism};
pub use jaas::JaasConfig;

use crate::AuthError;

/// A SASL mechanism gregor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN`: users and passwords from the JAAS configuration.
    Plain,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`: credentials from coordination.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(m) => m.name(),
        }
    }

    /// The mechanism of a name (`None`: not one gregor serves).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Self::Plain),
            other => ScramMechanism::from_name(other).map(Self::Scram),
        }
    }
}

/// A SASL listener's authentication settings.
#[derive(Debug, Clone)]
pub struct SaslServerConfig {
    /// The mechanisms offered, in the configured order.
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users (name → password).
    pub plain_users: HashMap<String, String>,
    /// SCRAM credentials (the broker keeps them in step with coordination).
    pub scram: Arc<CredentialCache>,
}

impl SaslServerConfig {
    /// The mechanism names offered (SaslHandshake's answer).
    pub fn mechanism_names(&self) -> Vec<&'static str> {
        self.mechanisms.iter().map(|m| m.name()).collect()
    }
}

/// What a mechanism answers to a client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this and wait for the client's next token.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `response` (possibly empty).
    Done {
        /// The last server message.
        response: Vec<u8>,
        /// The authenticated user name.
        user: String,
    },
}

/// One connection's SASL exchange once a mechanism is chosen.
pub struct SaslExchange {
    config: Arc<SaslServerConfig>,
    mechanism: Mechanism,
    scram: Option<scram::ScramServer>,
}

impl SaslExchange {
    /// Starts an exchange with `mechanism_name` if the listener offers it;
    /// otherwise the error names what it offers.
    pub fn start(config: Arc<SaslServerConfig>, mechanism_name: &str) -> Result<Self, AuthError> {
        let mechanism = Mechanism::from_name(mechanism_name)
            .filter(|m| config.mechanisms.contains(m))
            .ok_or_else(|| {
                AuthError::Sasl(format!(
                    "Unsupported SASL mechanism {mechanism_name}: enabled mechanisms are {}",
                    config.mechanism_names().join(", ")
                ))
            })?;
        Ok(Self {
            config,
            mechanism,
            scram: None,
        })
    }

    /// The mechanism chosen.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The next step given the client's token.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        match self.mechanism {
            Mechanism::Plain => plain::authenticate(token, &self.config.plain_users).map(|user| Step::Done {
                response: Vec::new(),
                user,
            }),
            Mechanism::Scram(m) => {
                let config = &self.config;
                self.scram
                    .get_or_insert_with(|| scram::ScramServer::new(m, config.scram.clone()))
                    .step(token)
            }
        }
    }
}
