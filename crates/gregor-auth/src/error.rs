//! What can go wrong authenticating.

/// An authentication error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A security setting is wrong or a file it names unreadable.
    #[error("security configuration: {0}")]
    Config(String),
    /// A peer's certificate could not be read.
    #[error("{0}")]
    Certificate(String),
    /// A SASL exchange failed (the message goes back to the client).
    #[error("{0}")]
    Sasl(String),
}
