//! ApiVersions: the API keys and version ranges this broker speaks, and
//! (v3+) the `transaction.version` feature.
//!
//! Old clients (librdkafka before 2.x… and Debian 12's 2.0.2) send v3 and
//! must get a v3 answer with exactly the keys the broker implements; a
//! request for a version above ours gets `UNSUPPORTED_VERSION` in a v0
//! response that still lists our ranges, so the client can retry.
//!
//! Features (tagged, v3+), as Kafka writes them: the finalized
//! `transaction.version` with min = max = level, left out at level 0; the
//! supported range 0..=2 only from v4 (a min-0 supported feature broke
//! older clients at v3, KAFKA-17492). The finalized-features epoch is the
//! broker's start time in ms: it is ≥ 0 (the Java client ignores the
//! finalized features otherwise) and grows when a restart changes the level.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::protocol::StrBytes;

use crate::versions::SUPPORTED;

/// The feature transactions v2 is switched on with (KIP-890 part 2).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The highest `transaction.version` level gregor implements.
pub const MAX_TRANSACTION_VERSION: i16 = 2;
/// The first response version carrying features.
const FEATURES_FROM: i16 = 3;
/// The first response version carrying min-0 supported features.
const MIN_ZERO_SUPPORTED_FROM: i16 = 4;

/// The answer at `version`, with `UNSUPPORTED_VERSION` when `unsupported`;
/// `transaction_version` is the broker's finalized level.
pub fn handle(unsupported: bool, version: i16, transaction_version: u8) -> ApiVersionsResponse {
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
        return response;
    }
    if version >= FEATURES_FROM {
        let level = i16::from(transaction_version);
        response.finalized_features_epoch = features_epoch();
        if level > 0 {
            let mut finalized = FinalizedFeatureKey::default();
            finalized.name = StrBytes::from_static_str(TRANSACTION_VERSION_FEATURE);
            finalized.min_version_level = level;
            finalized.max_version_level = level;
            response.finalized_features = vec![finalized];
        }
        if version >= MIN_ZERO_SUPPORTED_FROM {
            let mut supported = SupportedFeatureKey::default();
            supported.name = StrBytes::from_static_str(TRANSACTION_VERSION_FEATURE);
            supported.min_version = 0;
            supported.max_version = MAX_TRANSACTION_VERSION;
            response.supported_features = vec![supported];
        }
    }
    response
}

/// The finalized-features epoch: this process's first answer's time in ms.
fn features_epoch() -> i64 {
    static EPOCH: OnceLock<i64> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}
