//! What the transaction APIs share: waiting for the coordinator's answer,
//! riding out the previous transaction's completion, and the version rule
//! for PRODUCER_FENCED.

use std::time::{Duration, Instant};

use gregor_transaction::TransactionError;
use tokio::sync::oneshot;

/// How long a step that finds its id's previous transaction still
/// completing waits here before answering CONCURRENT_TRANSACTIONS: the
/// markers usually land within a few milliseconds, while a client told to
/// retry backs off for its `retry.backoff.ms` (100 ms in librdkafka) — a
/// producer committing small transactions back to back would spend most
/// of its time waiting.
const COMPLETION_WAIT: Duration = Duration::from_millis(50);
/// Pause between two tries while the transaction completes.
const COMPLETION_POLL: Duration = Duration::from_micros(100);

/// The coordinator's answer, waited for on a blocking thread (`None`: the
/// coordinator dropped the request, e.g. while stopping).
pub(crate) fn answered<T>(answer: oneshot::Receiver<T>) -> Option<T> {
    answer.blocking_recv().ok()
}

/// Asks `ask` again (for up to [`COMPLETION_WAIT`]) while its answer is
/// that the previous transaction is still completing; the last answer.
pub(crate) fn after_completion<T>(mut ask: impl FnMut() -> T, completing: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + COMPLETION_WAIT;
    loop {
        let answer = ask();
        if !completing(&answer) || Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(COMPLETION_POLL);
    }
}

/// True for CONCURRENT_TRANSACTIONS.
pub(crate) fn is_concurrent<T>(outcome: &Result<T, TransactionError>) -> bool {
    matches!(outcome, Err(TransactionError::ConcurrentTransactions))
}

/// Whether a client of this API `version` knows PRODUCER_FENCED (added to
/// each transaction API at `since`); older ones get INVALID_PRODUCER_EPOCH.
pub(crate) fn fenced_code_known(version: i16, since: i16) -> bool {
    version >= since
}
