//! The client side of PLAIN and SCRAM (what brokers and gregor's tools
//! send to a SASL listener): the tokens of each step, the server's last
//! message checked (SCRAM's server signature).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::credential::ScramMechanism;
use super::Mechanism;
use crate::AuthError;

/// One client's SASL exchange.
pub struct SaslClient {
    mechanism: Mechanism,
    username: String,
    password: String,
    state: ClientState,
}

enum ClientState {
    Start,
    /// Sent client-first (its bare part and nonce kept).
    SentFirst {
        bare: String,
        nonce: String,
    },
    /// Sent client-final; the server signature expected.
    SentFinal {
        server_signature: Vec<u8>,
    },
    Done,
}

fn bad(message: &str) -> AuthError {
    AuthError::Sasl(format!("SCRAM: {message}"))
}

/// RFC 5802's `saslname` encoding (`,` → `=2C`, `=` → `=3D`).
fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

impl SaslClient {
    /// An exchange with `mechanism` as `username`.
    pub fn new(mechanism: Mechanism, username: &str, password: &str) -> Self {
        Self {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
            state: ClientState::Start,
        }
    }

    /// The mechanism's name (SaslHandshake's).
    pub fn mechanism_name(&self) -> &'static str {
        self.mechanism.name()
    }

    /// Whether the exchange has ended successfully.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ClientState::Done)
    }

    /// The first token.
    pub fn first_token(&mut self) -> Vec<u8> {
        match self.mechanism {
            Mechanism::Plain => {
                self.state = ClientState::Done;
                format!("\0{}\0{}", self.username, self.password).into_bytes()
            }
            Mechanism::Scram(_) => {
                let nonce_bytes: [u8; 24] = rand::random();
                let nonce = B64.encode(nonce_bytes);
                let bare = format!("n={},r={nonce}", encode_saslname(&self.username));
                let token = format!("n,,{bare}").into_bytes();
                self.state = ClientState::SentFirst { bare, nonce };
                token
            }
        }
    }

    /// The answer to the server's `challenge`; `None` once nothing more is
    /// to be sent (the server's last message checked).
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        let Mechanism::Scram(mechanism) = self.mechanism else {
            return Ok(None);
        };
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::SentFirst { bare, nonce } => {
                let server_first = std::str::from_utf8(challenge).map_err(|_| bad("server-first is not UTF-8"))?;
                let (final_message, server_signature) =
                    client_final(mechanism, &self.password, &bare, &nonce, server_first)?;
                self.state = ClientState::SentFinal { server_signature };
                Ok(Some(final_message.into_bytes()))
            }
            ClientState::SentFinal { server_signature } => {
                let text = std::str::from_utf8(challenge).map_err(|_| bad("server-final is not UTF-8"))?;
                if let Some(error) = text.strip_prefix("e=") {
                    return Err(AuthError::Sasl(format!("SCRAM: the server refused: {error}")));
                }
                let signature = text
                    .strip_prefix("v=")
                    .and_then(|v| B64.decode(v).ok())
                    .ok_or_else(|| bad("server-final without a verifier"))?;
                if !bool::from(signature.ct_eq(&server_signature)) {
                    return Err(bad(
                        "the server's signature is wrong (not the server the credential is for)",
                    ));
                }
                Ok(None)
            }
            ClientState::Start | ClientState::Done => Err(bad("no challenge expected now")),
        }
    }
}

/// client-final and the expected server signature, for server-first.
fn client_final(
    mechanism: ScramMechanism,
    password: &str,
    bare: &str,
    nonce: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>), AuthError> {
    let mut combined = None;
    let mut salt = None;
    let mut iterations = None;
    for field in server_first.split(',') {
        match field.split_once('=') {
            Some(("r", v)) => combined = Some(v),
            Some(("s", v)) => salt = B64.decode(v).ok(),
            Some(("i", v)) => iterations = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let combined = combined
        .filter(|r| r.starts_with(nonce) && r.len() > nonce.len())
        .ok_or_else(|| bad("server-first's nonce does not extend ours"))?;
    let salt = salt.ok_or_else(|| bad("server-first without a salt"))?;
    let iterations = iterations
        .filter(|i| *i >= 1 && *i <= 1_000_000)
        .ok_or_else(|| bad("server-first without sensible iterations"))?;
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let without_proof = format!("c=biws,r={combined}");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
    let server_key = mechanism.hmac(&salted, b"Server Key");
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        mechanism.hmac(&server_key, auth_message.as_bytes()),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{CredentialCache, SaslExchange, SaslServerConfig, ScramCredential, Step};
    use super::*;

    #[test]
    fn client_and_server_agree() {
        for m in ScramMechanism::ALL {
            let cache = CredentialCache::new();
            cache.set_user("bob", [(m, ScramCredential::generate(m, "pw", 4096))].into());
            let config = Arc::new(SaslServerConfig {
                mechanisms: vec![Mechanism::Scram(m)],
                plain_users: Default::default(),
                scram: Arc::new(cache),
            });
            let mut server = SaslExchange::start(config, m.name()).unwrap();
            let mut client = SaslClient::new(Mechanism::Scram(m), "bob", "pw");
            let Step::Continue(challenge) = server.step(&client.first_token()).unwrap() else {
                panic!("expected server-first")
            };
            let last = client.respond(&challenge).unwrap().unwrap();
            let Step::Done { response, user } = server.step(&last).unwrap() else {
                panic!("expected the end")
            };
            assert_eq!(user, "bob");
            assert_eq!(client.respond(&response).unwrap(), None);
            // A forged server signature is caught.
            let mut client = SaslClient::new(Mechanism::Scram(m), "bob", "pw");
            let mut server = SaslExchange::start(
                Arc::new(SaslServerConfig {
                    mechanisms: vec![Mechanism::Scram(m)],
                    plain_users: Default::default(),
                    scram: Arc::new({
                        let c = CredentialCache::new();
                        c.set_user("bob", [(m, ScramCredential::generate(m, "pw", 4096))].into());
                        c
                    }),
                }),
                m.name(),
            )
            .unwrap();
            let Step::Continue(challenge) = server.step(&client.first_token()).unwrap() else {
                panic!()
            };
            client.respond(&challenge).unwrap();
            assert!(client.respond(b"v=AAAA").is_err());
        }
    }
}
