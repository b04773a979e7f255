//! What the transaction APIs share: waiting for the coordinator's answer
//! and the version rule for PRODUCER_FENCED.

use tokio::sync::oneshot;

/// The coordinator's answer, waited for on a handler thread (`None`: the
/// coordinator dropped the request, e.g. while stopping).
pub(crate) fn answered<T>(answer: oneshot::Receiver<T>) -> Option<T> {
    answer.blocking_recv().ok()
}

/// Whether a client of this API `version` knows PRODUCER_FENCED (added to
/// each transaction API at `since`); older ones get INVALID_PRODUCER_EPOCH.
pub(crate) fn fenced_code_known(version: i16, since: i16) -> bool {
    version >= since
}
