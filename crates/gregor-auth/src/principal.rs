//! Kafka's principal: a type and a name, written `User:alice`.

use std::fmt;
use std::str::FromStr;

/// Who a connection is, as Kafka names it (`KafkaPrincipal`): the type is
/// `User` for every built-in authentication; an unauthenticated
/// connection is `User:ANONYMOUS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    /// The principal type (`User`).
    pub principal_type: String,
    /// The name within its type (`alice`, a certificate's subject, `*`).
    pub name: String,
}

/// The principal type of every built-in authentication.
pub const USER_TYPE: &str = "User";

impl KafkaPrincipal {
    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            principal_type: USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: a connection that has not authenticated
    /// (PLAINTEXT, or SSL without a client certificate).
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Whether this is `User:ANONYMOUS`.
    pub fn is_anonymous(&self) -> bool {
        *self == Self::anonymous()
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// A principal string without its `Type:` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a principal as Type:name (User:alice), got {0:?}")]
pub struct PrincipalError(pub String);

impl FromStr for KafkaPrincipal {
    type Err = PrincipalError;

    /// Parses `Type:name` (the name may itself hold colons, as a
    /// certificate subject can).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(Self {
                principal_type: kind.to_string(),
                name: name.to_string(),
            }),
            _ => Err(PrincipalError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_reads_back_what_it_writes() {
        let alice = KafkaPrincipal::user("alice");
        assert_eq!(alice.to_string(), "User:alice");
        assert_eq!("User:alice".parse::<KafkaPrincipal>(), Ok(alice));
        let subject: KafkaPrincipal = "User:CN=broker,O=gregor:x".parse().unwrap();
        assert_eq!(subject.name, "CN=broker,O=gregor:x");
        assert!("alice".parse::<KafkaPrincipal>().is_err());
        assert!(":alice".parse::<KafkaPrincipal>().is_err());
        assert!(KafkaPrincipal::anonymous().is_anonymous());
    }
}
