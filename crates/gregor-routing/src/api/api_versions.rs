//! ApiVersions: the API keys and version ranges this broker speaks.
//!
//! Old clients (librdkafka before 2.x… and Debian 12's 2.0.2) send v3 and
//! must get a v3 answer with exactly the keys the broker implements; a
//! request for a version above ours gets `UNSUPPORTED_VERSION` in a v0
//! response that still lists our ranges, so the client can retry.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::versions::SUPPORTED;

/// The answer, with `UNSUPPORTED_VERSION` when `unsupported`.
pub fn handle(unsupported: bool) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    if unsupported {
        response.error_code = ResponseError::UnsupportedVersion.code();
    }
    response
}
