//! The dispatcher: a short table from API key to handler.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::api;
use crate::broker::Broker;

/// Encodes a response into the output buffer.
pub type Encoder = Box<dyn FnOnce(&mut BytesMut) -> anyhow_like::Result<()> + Send>;

/// What to do after a request.
pub enum Outcome {
    /// Send this response, encoded at `version`.
    Respond {
        /// Response version (the request's, except a downgraded ApiVersions).
        version: i16,
        /// Writes the response body.
        encode: Encoder,
    },
    /// Nothing to send (`acks=0` produce).
    NoResponse,
    /// Close the connection.
    Close(String),
}

/// Error type of the codec's encoders.
pub mod anyhow_like {
    /// The codec's result.
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

fn respond<T: Encodable + Send + 'static>(response: T, version: i16) -> Outcome {
    Outcome::Respond {
        version,
        encode: Box::new(move |out| response.encode(out, version).map_err(|e| e.to_string().into())),
    }
}

fn decode<T: Decodable>(body: &mut Bytes, key: ApiKey, version: i16) -> Result<T, Outcome> {
    T::decode(body, version).map_err(|e| Outcome::Close(format!("malformed {key:?} v{version} request: {e}")))
}

/// Runs the request in `body` and says what to answer.
pub async fn dispatch(broker: &Broker, key: ApiKey, header: &RequestHeader, body: &mut Bytes) -> Outcome {
    let version = header.request_api_version;
    let Some((min, max)) = api::api_versions::supported(key) else {
        return Outcome::Close(format!("unsupported API {key:?}"));
    };
    if version < min || version > max {
        // Kafka's rule: an ApiVersions the broker does not know is answered
        // at v0 with UNSUPPORTED_VERSION and the supported ranges.
        return if key == ApiKey::ApiVersions {
            respond(api::api_versions::handle(true), 0)
        } else {
            Outcome::Close(format!("{key:?} v{version} is not supported"))
        };
    }
    let result = async {
        Ok(match key {
            ApiKey::ApiVersions => {
                let _request: ApiVersionsRequest = decode(body, key, version)?;
                respond(api::api_versions::handle(false), version)
            }
            ApiKey::Metadata => respond(
                api::metadata::handle(broker, decode::<MetadataRequest>(body, key, version)?, version),
                version,
            ),
            ApiKey::Produce => {
                match api::produce::handle(broker, decode::<ProduceRequest>(body, key, version)?, version) {
                    Some(response) => respond(response, version),
                    None => Outcome::NoResponse,
                }
            }
            ApiKey::Fetch => respond(
                api::fetch::handle(broker, decode::<FetchRequest>(body, key, version)?, version).await,
                version,
            ),
            ApiKey::ListOffsets => respond(
                api::list_offsets::handle(broker, decode::<ListOffsetsRequest>(body, key, version)?),
                version,
            ),
            ApiKey::CreateTopics => respond(
                api::create_topics::handle(broker, decode::<CreateTopicsRequest>(body, key, version)?),
                version,
            ),
            ApiKey::DeleteTopics => respond(
                api::delete_topics::handle(broker, decode::<DeleteTopicsRequest>(body, key, version)?),
                version,
            ),
            ApiKey::InitProducerId => respond(
                api::init_producer_id::handle(broker, decode::<InitProducerIdRequest>(body, key, version)?),
                version,
            ),
            other => Outcome::Close(format!("unsupported API {other:?}")),
        })
    };
    match result.await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}
