//! What a handler gives back for the connection to do: a response to
//! encode, nothing, a muted channel, a close, or an operation still to
//! wait for — and the constructors of responses of either codec.

use std::future::Future;
use std::pin::Pin;

use bytes::BytesMut;
use kafka_protocol::protocol::Encodable;

use crate::splice::Splice;

/// Encodes a response body into the output buffer.
pub type Encoder = Box<dyn FnOnce(&mut BytesMut) -> Result<(), String> + Send>;

/// What to send back.
pub enum Outcome {
    /// This response, encoded at `version`.
    Respond {
        /// Response version (the request's, except a downgraded ApiVersions).
        version: i16,
        /// Writes the response body.
        encode: Encoder,
        /// File regions to send in place of placeholders (Fetch).
        splices: Vec<Splice>,
        /// How long (ms) the connection is muted after the response: the
        /// client is over a quota (KIP-219).
        throttle_ms: i32,
    },
    /// Nothing (`acks=0` produce).
    NoResponse,
    /// Nothing, and the connection is muted this long (ms): an `acks=0`
    /// produce over its quota.
    Mute(i32),
    /// No answer can be given (a handler failed): the connection closes,
    /// as Kafka closes it on an unexpected error.
    Close,
    /// Not yet: an operation that waits (a Fetch for `min_bytes`) and then
    /// gives the outcome; the connection's processor runs it.
    Delayed(Pin<Box<dyn Future<Output = Outcome> + Send>>),
}

/// A response encoded at `version`.
pub(crate) fn respond<T: Encodable + Send + 'static>(response: T, version: i16) -> Outcome {
    Outcome::Respond {
        version,
        encode: Box::new(move |out| response.encode(out, version).map_err(|e| e.to_string())),
        splices: Vec::new(),
        throttle_ms: 0,
    }
}

impl Outcome {
    /// The same outcome with the connection muted at least `throttle_ms`
    /// after it (a quota violation found after the handler ran).
    pub fn muted_at_least(self, throttle_ms: i32) -> Outcome {
        if throttle_ms <= 0 {
            return self;
        }
        match self {
            Outcome::Respond {
                version,
                encode,
                splices,
                throttle_ms: t,
            } => Outcome::Respond {
                version,
                encode,
                splices,
                throttle_ms: t.max(throttle_ms),
            },
            Outcome::NoResponse => Outcome::Mute(throttle_ms),
            Outcome::Mute(t) => Outcome::Mute(t.max(throttle_ms)),
            Outcome::Close => Outcome::Close,
            Outcome::Delayed(operation) => {
                Outcome::Delayed(Box::pin(async move { operation.await.muted_at_least(throttle_ms) }))
            }
        }
    }
}

/// A response of the controller APIs (the older codec's types).
pub(crate) fn respond_zk<T: kafka_protocol_zk::protocol::Encodable + Send + 'static>(
    response: T,
    version: i16,
) -> Outcome {
    Outcome::Respond {
        version,
        encode: Box::new(move |out| response.encode(out, version).map_err(|e| e.to_string())),
        splices: Vec::new(),
        throttle_ms: 0,
    }
}
