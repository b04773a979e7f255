//! A SASL listener's gate (Kafka's `SaslServerAuthenticator`): until the
//! connection has authenticated, only ApiVersions goes on to the handlers;
//! SaslHandshake and SaslAuthenticate are answered here; anything else
//! closes the connection. A failed authentication is answered with
//! SASL_AUTHENTICATION_FAILED and its message, then the connection closes
//! (after `connection.failed.authentication.delay.ms`).
//!
//! SaslHandshake v0 (before KIP-152) is followed by bare tokens, each a
//! size-prefixed blob without a Kafka header; v1 by SaslAuthenticate.
//!
//! Re-authentication (KIP-368): with `connections.max.reauth.ms`, the
//! session lasts that long (SaslAuthenticate v1+ tells the client); a
//! SaslHandshake on an authenticated connection starts the exchange again,
//! which must end with the same principal; a connection past its session
//! that sends anything else is closed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_auth::sasl::{SaslExchange, SaslServerConfig, Step};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::outcome::Outcome;
use crate::request::{Frame, Request};

/// What the gate makes of a request.
pub(crate) enum Verdict {
    /// Not the gate's: the pipeline handles it.
    Pass(Box<Frame>),
    /// The gate's answer, then what follows it.
    Answer(Outcome, After),
    /// A request not allowed before authentication: close.
    Close(String),
}

/// What follows a gate's answer.
pub(crate) enum After {
    /// Wait for the next request.
    Continue,
    /// The connection is now `User:<name>`.
    Authenticated(String),
    /// Authentication failed: close after the delay.
    Failed(String),
}

/// One connection's SASL state.
pub(crate) struct SaslGate {
    config: Arc<SaslServerConfig>,
    exchange: Option<SaslExchange>,
    /// SaslHandshake v0: the next frames are bare tokens.
    bare_tokens: bool,
    authenticated: bool,
    /// `connections.max.reauth.ms` (none: sessions do not expire).
    max_reauth: Option<Duration>,
    /// When the session ends (with `max_reauth`).
    expires: Option<Instant>,
    /// The user a re-authentication must be again.
    user: Option<String>,
}

fn respond<T: Encodable + Send + 'static>(response: T, version: i16) -> Outcome {
    Outcome::Respond {
        version,
        encode: Box::new(move |out| response.encode(out, version).map_err(|e| e.to_string())),
        splices: Vec::new(),
        throttle_ms: 0,
    }
}

impl SaslGate {
    /// A gate with the listener's SASL settings; sessions last
    /// `max_reauth` when given (KIP-368).
    pub(crate) fn new(config: Arc<SaslServerConfig>, max_reauth: Option<Duration>) -> Self {
        Self {
            config,
            exchange: None,
            bare_tokens: false,
            authenticated: false,
            max_reauth,
            expires: None,
            user: None,
        }
    }

    /// Whether the connection has authenticated (the gate is open).
    pub(crate) fn is_open(&self) -> bool {
        self.authenticated
    }

    /// Looks at a request of an authenticated connection: a SaslHandshake
    /// with re-authentication on closes the gate again (the request then
    /// goes through [`Self::check`]); any other request after the session
    /// ended is refused (the connection closes).
    pub(crate) fn admit(&mut self, frame: &Frame) -> Result<(), String> {
        if self.max_reauth.is_some() && matches!(frame.request, Request::SaslHandshake(_)) {
            self.authenticated = false;
            return Ok(());
        }
        match self.expires {
            Some(at) if Instant::now() >= at => Err(format!(
                "the SASL session ended (connections.max.reauth.ms) without re-authentication; API key {} refused",
                frame.api_key
            )),
            _ => Ok(()),
        }
    }

    /// The session lifetime SaslAuthenticate v1+ tells the client (0: no
    /// re-authentication needed).
    fn session_lifetime_ms(&self) -> i64 {
        self.max_reauth
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Whether the next frame is a bare token (after SaslHandshake v0).
    pub(crate) fn expects_bare_token(&self) -> bool {
        self.bare_tokens && !self.authenticated
    }

    /// A bare token's answer (the bytes to send, size-prefixed by the
    /// caller) and what follows.
    pub(crate) fn bare_token(&mut self, token: &[u8]) -> (Vec<u8>, After) {
        match self.step(token) {
            Ok((bytes, after)) => (bytes, after),
            Err(message) => (Vec::new(), After::Failed(message)),
        }
    }

    fn step(&mut self, token: &[u8]) -> Result<(Vec<u8>, After), String> {
        let exchange = self
            .exchange
            .as_mut()
            .ok_or_else(|| "a SASL token before SaslHandshake".to_string())?;
        match exchange.step(token).map_err(|e| e.to_string())? {
            Step::Continue(bytes) => Ok((bytes, After::Continue)),
            Step::Done { response, user } => {
                self.exchange = None;
                if let Some(before) = self.user.as_ref().filter(|before| **before != user) {
                    return Err(format!(
                        "Cannot change principals during re-authentication from User:{before}: User:{user}"
                    ));
                }
                self.authenticated = true;
                self.user = Some(user.clone());
                self.expires = self.max_reauth.map(|d| Instant::now() + d);
                Ok((response, After::Authenticated(user)))
            }
        }
    }

    /// The gate's verdict on a request of a connection not yet
    /// authenticated.
    pub(crate) fn check(&mut self, frame: Frame) -> Verdict {
        let version = frame.header.request_api_version;
        match frame.request {
            Request::ApiVersions(_) | Request::ApiVersionsTooNew => Verdict::Pass(Box::new(frame)),
            Request::SaslHandshake(r) if self.exchange.is_none() => {
                let mut response = SaslHandshakeResponse::default();
                response.mechanisms = self
                    .config
                    .mechanism_names()
                    .into_iter()
                    .map(StrBytes::from_static_str)
                    .collect();
                match SaslExchange::start(self.config.clone(), r.mechanism.as_str()) {
                    Ok(exchange) => {
                        self.exchange = Some(exchange);
                        self.bare_tokens = version == 0;
                        Verdict::Answer(respond(response, version), After::Continue)
                    }
                    Err(e) => {
                        response.error_code = ResponseError::UnsupportedSaslMechanism.code();
                        Verdict::Answer(respond(response, version), After::Failed(e.to_string()))
                    }
                }
            }
            Request::SaslAuthenticate(r) if self.exchange.is_some() && !self.bare_tokens => {
                let mut response = SaslAuthenticateResponse::default();
                match self.step(&r.auth_bytes) {
                    Ok((bytes, after)) => {
                        response.auth_bytes = Bytes::from(bytes);
                        if matches!(after, After::Authenticated(_)) && version >= 1 {
                            response.session_lifetime_ms = self.session_lifetime_ms();
                        }
                        Verdict::Answer(respond(response, version), after)
                    }
                    Err(message) => {
                        response.error_code = ResponseError::SaslAuthenticationFailed.code();
                        response.error_message = Some(StrBytes::from_string(message.clone()));
                        Verdict::Answer(respond(response, version), After::Failed(message))
                    }
                }
            }
            _ => Verdict::Close(format!(
                "unexpected request (API key {}) during SASL authentication",
                frame.api_key
            )),
        }
    }
}
