//! What the broker knows about a connection when it handles a request.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::KafkaPrincipal;

/// A listener's security protocol, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS; the principal is the client certificate's (mTLS) or anonymous.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name (`SASL_SSL`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections speak TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            _ => Err(format!(
                "unknown security protocol {s:?} (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
            )),
        }
    }
}

/// A connection's identity, fixed once it has authenticated (Kafka's
/// `RequestContext` principal, client address and listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who the connection is.
    pub principal: KafkaPrincipal,
    /// The client's address (`None` when the socket could not tell).
    pub client_address: Option<IpAddr>,
    /// The listener's name (`PLAINTEXT`, `INTERNAL`, …).
    pub listener: String,
    /// The listener's security protocol.
    pub security_protocol: SecurityProtocol,
}

impl Session {
    /// An unauthenticated connection from `client_address` on a PLAINTEXT
    /// listener of that name.
    pub fn plaintext(client_address: Option<IpAddr>) -> Self {
        Self {
            principal: KafkaPrincipal::anonymous(),
            client_address,
            listener: "PLAINTEXT".to_string(),
            security_protocol: SecurityProtocol::Plaintext,
        }
    }

    /// The client's address as Kafka shows it in group descriptions
    /// (`/127.0.0.1`), empty when unknown.
    pub fn client_host(&self) -> String {
        self.client_address.map(|ip| format!("/{ip}")).unwrap_or_default()
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::plaintext(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_read_back_by_their_kafka_names() {
        for p in [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            assert_eq!(p.name().parse::<SecurityProtocol>(), Ok(p));
        }
        assert!("sasl_ssl".parse::<SecurityProtocol>().unwrap().uses_tls());
        assert!("TLS".parse::<SecurityProtocol>().is_err());
    }

    #[test]
    fn a_plaintext_session_is_anonymous_and_shows_its_host_as_kafka_does() {
        let session = Session::plaintext(Some("127.0.0.1".parse().unwrap()));
        assert!(session.principal.is_anonymous());
        assert_eq!(session.client_host(), "/127.0.0.1");
        assert_eq!(Session::default().client_host(), "");
    }
}
