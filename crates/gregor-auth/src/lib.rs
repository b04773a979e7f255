//! gregor's security model, as Kafka's: who a connection is (a
//! [`KafkaPrincipal`], established by TLS or SASL on the listener it came
//! through — its [`Session`]) and what that principal may do.
//!
//! This crate knows nothing of sockets or coordination: the network layer
//! (gregor-routing) builds the session of each connection, the handlers ask
//! the authorizer, and the server keeps credentials and ACLs in
//! coordination. What it holds for authentication:
//!
//! - [`tls`]: rustls server and client configurations from PEM files
//!   (`ssl.keystore.location`, `ssl.key.password` for an encrypted PKCS#8
//!   key, `ssl.truststore.location`, `ssl.client.auth`), reloaded when the
//!   files change;
//! - [`certificate_subject`] and [`SslPrincipalMapper`]: an mTLS client's
//!   principal, as Kafka makes it;
//! - [`sasl`]: PLAIN and SCRAM-SHA-256/512, server and client sides,
//!   sans-IO, and SCRAM credentials in Kafka's stored form.

pub mod acl;
mod error;
mod pem_store;
mod principal;
pub mod sasl;
mod session;
mod ssl_principal;
pub mod tls;

pub use error::AuthError;
pub use principal::{KafkaPrincipal, PrincipalError};
pub use rustls;
pub use sasl::{SaslExchange, SaslServerConfig};
pub use session::{SecurityProtocol, Session};
pub use ssl_principal::{certificate_subject, SslPrincipalMapper};
pub use tls::{ClientAuth, ClientIdentity, PemSource, TlsSettings};
