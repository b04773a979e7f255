//! The server side of SCRAM (RFC 5802, as Kafka's `ScramSaslServer`):
//! client-first → server-first (nonce, salt, iterations) → client-final
//! (proof checked against the stored key) → server-final (signature).
//! The message parsers take any bytes (they are fuzzed).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::credential::{CredentialCache, ScramMechanism};
use super::Step;
use crate::AuthError;

/// A client's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The GS2 header's authorization id (`a=`), if any.
    pub authzid: Option<String>,
    /// The user name, `=2C`/`=3D` decoded.
    pub username: String,
    /// The client's nonce.
    pub nonce: String,
    /// Extensions after the nonce (`tokenauth=true`, …), as `key=value`.
    pub extensions: Vec<(String, String)>,
    /// The message without its GS2 header (part of the AuthMessage).
    pub bare: String,
}

/// A client's final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// The channel binding (base64 of the GS2 header).
    pub channel_binding: String,
    /// The whole nonce (client's + server's).
    pub nonce: String,
    /// The proof, decoded.
    pub proof: Vec<u8>,
    /// The message without `,p=…` (part of the AuthMessage).
    pub without_proof: String,
}

fn bad(message: &str) -> AuthError {
    AuthError::Sasl(format!("Invalid SCRAM message: {message}"))
}

/// RFC 5802's `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is
/// an error.
fn decode_saslname(name: &str) -> Result<String, AuthError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(bad("a user name with a bare '='")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a client-first message: `gs2-header n=user,r=nonce[,ext=…]`.
pub fn parse_client_first(bytes: &[u8]) -> Result<ClientFirst, AuthError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let mut parts = text.splitn(3, ',');
    let cbind = parts.next().unwrap_or_default();
    if cbind != "n" && cbind != "y" {
        return Err(bad("channel binding is not supported"));
    }
    let authzid = match parts.next() {
        Some("") => None,
        Some(a) => Some(decode_saslname(
            a.strip_prefix("a=").ok_or_else(|| bad("bad authorization id"))?,
        )?),
        None => return Err(bad("no GS2 header")),
    };
    let bare = parts.next().ok_or_else(|| bad("nothing after the GS2 header"))?;
    let mut fields = bare.split(',');
    let username = fields
        .next()
        .and_then(|f| f.strip_prefix("n="))
        .ok_or_else(|| bad("no user name"))?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("no nonce"))?;
    let mut extensions = Vec::new();
    for f in fields {
        let (k, v) = f.split_once('=').ok_or_else(|| bad("an extension without '='"))?;
        extensions.push((k.to_string(), v.to_string()));
    }
    Ok(ClientFirst {
        authzid,
        username: decode_saslname(username)?,
        nonce: nonce.to_string(),
        extensions,
        bare: bare.to_string(),
    })
}

/// Parses a client-final message: `c=…,r=…[,ext…],p=…`.
pub fn parse_client_final(bytes: &[u8]) -> Result<ClientFinal, AuthError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| bad("no proof"))?;
    let mut fields = without_proof.split(',');
    let channel_binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or_else(|| bad("no channel binding"))?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(|| bad("no nonce"))?;
    Ok(ClientFinal {
        channel_binding: channel_binding.to_string(),
        nonce: nonce.to_string(),
        proof: B64.decode(proof).map_err(|_| bad("a proof that is not base64"))?,
        without_proof: without_proof.to_string(),
    })
}

/// Where a SCRAM exchange stands.
enum State {
    /// Waiting for the client's first message.
    First,
    /// Sent server-first; waiting for client-final.
    Final {
        username: String,
        gs2_header: String,
        nonce: String,
        auth_prefix: String,
        credential: super::credential::ScramCredential,
    },
    /// Finished (either way).
    Done,
}

/// One connection's SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    credentials: Arc<CredentialCache>,
    state: State,
}

/// Kafka's answer to any credential failure (unknown user or wrong
/// password alike, so neither is told apart).
const INVALID_CREDENTIALS: &str =
    "Authentication failed during authentication due to invalid credentials with SASL mechanism";

impl ScramServer {
    /// A new exchange for `mechanism` over `credentials`.
    pub fn new(mechanism: ScramMechanism, credentials: Arc<CredentialCache>) -> Self {
        Self {
            mechanism,
            credentials,
            state: State::First,
        }
    }

    fn failed(&self) -> AuthError {
        AuthError::Sasl(format!("{INVALID_CREDENTIALS} {}", self.mechanism.name()))
    }

    /// The next step given the client's token.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::First => {
                let first = parse_client_first(token)?;
                if first.authzid.as_ref().is_some_and(|a| *a != first.username) {
                    return Err(AuthError::Sasl(
                        "Authentication failed: Client requested an authorization id that is different from username"
                            .into(),
                    ));
                }
                if first.extensions.iter().any(|(k, v)| k == "tokenauth" && v == "true") {
                    return Err(AuthError::Sasl(
                        "Authentication failed: delegation tokens are not supported".into(),
                    ));
                }
                let credential = self
                    .credentials
                    .get(&first.username, self.mechanism)
                    .ok_or_else(|| self.failed())?;
                let server_nonce: [u8; 24] = rand::random();
                let nonce = format!("{}{}", first.nonce, B64.encode(server_nonce));
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&credential.salt),
                    credential.iterations
                );
                let gs2_len = token.len() - first.bare.len();
                let gs2_header = String::from_utf8_lossy(&token[..gs2_len]).into_owned();
                self.state = State::Final {
                    username: first.username,
                    gs2_header,
                    nonce,
                    auth_prefix: format!("{},{server_first}", first.bare),
                    credential,
                };
                Ok(Step::Continue(server_first.into_bytes()))
            }
            State::Final {
                username,
                gs2_header,
                nonce,
                auth_prefix,
                credential,
            } => {
                let last = parse_client_final(token)?;
                if last.nonce != nonce {
                    return Err(bad("the nonce does not match the server's"));
                }
                if B64.decode(&last.channel_binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
                    return Err(bad("the channel binding does not match the GS2 header"));
                }
                let auth_message = format!("{auth_prefix},{}", last.without_proof);
                let client_signature = self.mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
                if last.proof.len() != client_signature.len() {
                    return Err(self.failed());
                }
                let client_key: Vec<u8> = last.proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
                let stored = self.mechanism.hash(&client_key);
                if !bool::from(stored.ct_eq(&credential.stored_key)) {
                    return Err(self.failed());
                }
                let server_signature = self.mechanism.hmac(&credential.server_key, auth_message.as_bytes());
                Ok(Step::Done {
                    response: format!("v={}", B64.encode(server_signature)).into_bytes(),
                    user: username,
                })
            }
            State::Done => Err(bad("the exchange is already over")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::credential::ScramCredential;
    use super::*;

    /// A client side, as RFC 5802 computes it.
    fn client_final(
        mechanism: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let fields: std::collections::HashMap<_, _> =
            server_first.split(',').filter_map(|f| f.split_once('=')).collect();
        let salt = B64.decode(fields["s"]).unwrap();
        let iterations: u32 = fields["i"].parse().unwrap();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let stored = mechanism.hash(&client_key);
        let without_proof = format!("c=biws,r={}", fields["r"]);
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = mechanism.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = mechanism.hmac(&salted, b"Server Key");
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            mechanism.hmac(&server_key, auth.as_bytes()),
        )
    }

    fn exchange(mechanism: ScramMechanism, stored_password: &str, password: &str) -> Result<String, AuthError> {
        let cache = CredentialCache::new();
        let c = ScramCredential::generate(mechanism, stored_password, 4096);
        cache.set_user("ali,ce", [(mechanism, c)].into());
        let mut server = ScramServer::new(mechanism, Arc::new(cache));
        let bare = "n=ali=2Cce,r=fyko+d2lbbFgONRv9qkxdawL";
        let Step::Continue(server_first) = server.step(format!("n,,{bare}").as_bytes())? else {
            panic!("expected server-first")
        };
        let server_first = String::from_utf8(server_first).unwrap();
        let (last, expected_signature) = client_final(mechanism, password, bare, &server_first);
        match server.step(last.as_bytes())? {
            Step::Done { response, user } => {
                assert_eq!(response, format!("v={}", B64.encode(expected_signature)).into_bytes());
                Ok(user)
            }
            Step::Continue(_) => panic!("expected the end"),
        }
    }

    #[test]
    fn a_right_password_authenticates_and_a_wrong_one_does_not() {
        for m in ScramMechanism::ALL {
            assert_eq!(exchange(m, "pw", "pw").unwrap(), "ali,ce");
            let refused = exchange(m, "pw", "not pw").unwrap_err();
            assert!(refused.to_string().contains("invalid credentials"), "{refused}");
        }
    }

    #[test]
    fn an_unknown_user_gets_the_same_refusal() {
        let cache = CredentialCache::new();
        let mut server = ScramServer::new(ScramMechanism::Sha256, Arc::new(cache));
        let refused = server.step(b"n,,n=nobody,r=abc").err().unwrap();
        assert!(refused.to_string().contains("invalid credentials"));
    }

    #[test]
    fn malformed_messages_are_refused() {
        for m in [
            &b""[..],
            b"p=tls,,n=a,r=b",
            b"n,,r=x",
            b"n,,n=a",
            b"n,,n=a=,r=b",
            b"\xff\xfe",
        ] {
            assert!(parse_client_first(m).is_err(), "{m:?}");
        }
        for m in [&b"c=biws,r=x"[..], b"r=x,p=AAAA", b"c=biws,r=x,p=***"] {
            assert!(parse_client_final(m).is_err(), "{m:?}");
        }
        let first = parse_client_first(b"n,a=bob,n=bob,r=xyz,tokenauth=true").unwrap();
        assert_eq!(first.authzid.as_deref(), Some("bob"));
        assert_eq!(first.extensions, vec![("tokenauth".into(), "true".into())]);
    }
}
