//! Who appends and what an append checks before it writes: every batch's framing, size
//! and record rules, an idempotent producer's sequence, KIP-890's
//! verification of a transaction-opening batch, and the markers of
//! control batches.

use super::record_rules::RecordRules;
use super::AppendState;
use crate::batch::{validate_batch, validate_batch_integrity, BatchHeader, BatchIter, EndTransactionMarker};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::producer_state::{is_idempotent, BatchSequence, ProducerError, SequenceCheck, VerificationGuard};

/// Who appends to a leader's log (Kafka's `AppendOrigin`, without
/// replication: that is [`Log::append_replicated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: one batch per append, control batches are refused,
    /// idempotent batches are sequence-checked and deduplicated.
    Client,
    /// A coordinator (transaction markers, the group coordinator's
    /// transactional offset commits): control batches are accepted and
    /// sequences are not checked; epochs and coordinator epochs are.
    Coordinator,
}

/// Which checks a batch gets before it is stored.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    /// From a producer or coordinator: full record validation (the
    /// records of a producer's batch by `RecordRules`), offsets assigned
    /// here.
    Leader(AppendOrigin, &'a RecordRules<'a>),
    /// From a leader or the cleaner: offsets kept, integrity checked.
    Replica,
}

/// The transaction marker of each control batch. From a coordinator
/// (`required`) a control batch must hold one; a follower takes what its
/// leader wrote (a control batch without a readable marker changes no
/// state, as Kafka skips one the cleaner emptied).
pub(super) fn markers_of(
    bytes: &[u8],
    headers: &[(usize, BatchHeader)],
    required: bool,
) -> Result<Vec<Option<EndTransactionMarker>>> {
    headers
        .iter()
        .map(|(at, header)| {
            if !header.is_control() {
                return Ok(None);
            }
            let batch = &bytes[*at..*at + header.total_size()];
            match EndTransactionMarker::of_batch(batch, header) {
                Ok(Some(marker)) => Ok(Some(marker)),
                Err(source) if required => Err(LogError::CorruptBatch { position: *at, source }),
                _ if required => Err(LogError::InvalidAppend("a control batch without a transaction marker")),
                _ => Ok(None),
            }
        })
        .collect()
}

/// The idempotent-producer check of an append: `Some` with the original
/// batch when its batch is a retry already in the log. An idempotent
/// batch must come alone, as Kafka requires.
pub(super) fn check_producer(state: &AppendState, headers: &[(usize, BatchHeader)]) -> Result<Option<BatchSequence>> {
    let Some((_, header)) = headers.iter().find(|(_, h)| is_idempotent(h)) else {
        return Ok(None);
    };
    if headers.len() != 1 {
        return Err(LogError::InvalidAppend(
            "an idempotent producer's batch must be the only one in its append",
        ));
    }
    Ok(match state.producers.check(header)? {
        SequenceCheck::Append => None,
        SequenceCheck::Duplicate(done) => Some(done),
    })
}

/// KIP-890's check of an append (Kafka's `batchMissingRequiredVerification`):
/// each transactional data batch that opens its producer's transaction —
/// none open in the log, or one a marker earlier in the append ends —
/// must carry the producer's current verification `guard`. With
/// [`VerificationGuard::NONE`] the producer's verification starts (or the
/// one under way is reused) and the refusal carries its guard.
pub(super) fn check_verified(
    state: &mut AppendState,
    headers: &[(usize, BatchHeader)],
    guard: VerificationGuard,
    now_ms: i64,
) -> Result<()> {
    // Producers whose transaction this append opens (at an epoch) or ends
    // (`None`), overriding the log's state for the batches after. Open
    // means open at the batch's epoch: a newer epoch's batch starts the
    // producer's next transaction.
    let mut open: Vec<(i64, Option<i16>)> = Vec::new();
    for (_, h) in headers
        .iter()
        .filter(|(_, h)| h.producer_id >= 0 && h.is_transactional())
    {
        let id = h.producer_id;
        let was_open = match open.iter().find(|(p, _)| *p == id) {
            Some((_, open_epoch)) => *open_epoch == Some(h.producer_epoch),
            None => state.producers.has_ongoing_transaction(id, h.producer_epoch),
        };
        let now_open = !h.is_control();
        if now_open && !was_open {
            if guard == VerificationGuard::NONE {
                let guard = state.verifications.start(id, h.producer_epoch, h.base_sequence, now_ms);
                return Err(LogError::Producer(ProducerError::TransactionNotVerified {
                    producer_id: id,
                    producer_epoch: h.producer_epoch,
                    guard: Some(guard),
                }));
            }
            state
                .verifications
                .check(id, h.producer_epoch, h.base_sequence, guard)?;
        }
        let open_epoch = now_open.then_some(h.producer_epoch);
        match open.iter_mut().find(|(p, _)| *p == id) {
            Some(entry) => entry.1 = open_epoch,
            None => open.push((id, open_epoch)),
        }
    }
    Ok(())
}

/// Checks every batch of an append and that they fill `bytes` exactly.
pub(super) fn validate_all(bytes: &[u8], config: &LogConfig, origin: Origin<'_>) -> Result<Vec<(usize, BatchHeader)>> {
    if bytes.len() > config.segment_bytes as usize {
        return Err(LogError::RecordTooLarge {
            size: bytes.len(),
            max: config.segment_bytes as usize,
        });
    }
    let mut headers = Vec::new();
    let mut covered = 0;
    for item in BatchIter::new(bytes) {
        let (at, _) = item.map_err(|source| LogError::CorruptBatch {
            position: covered,
            source,
        })?;
        let batch = &bytes[at..];
        let checked = match origin {
            Origin::Leader(..) => validate_batch(batch),
            Origin::Replica => validate_batch_integrity(batch),
        };
        let header = checked.map_err(|source| LogError::CorruptBatch { position: at, source })?;
        if header.total_size() > config.max_message_bytes as usize {
            return Err(LogError::RecordTooLarge {
                size: header.total_size(),
                max: config.max_message_bytes as usize,
            });
        }
        if let Origin::Leader(from, rules) = origin {
            if from == AppendOrigin::Client && header.is_control() {
                return Err(LogError::ControlBatchFromClient { position: at });
            }
            if header.record_count == 0 {
                return Err(LogError::InvalidAppend("a record batch without records"));
            }
            if !header.is_control() {
                rules.check(batch, &header, at)?;
            }
        }
        covered = at + header.total_size();
        headers.push((at, header));
    }
    if covered != bytes.len() {
        let source =
            crate::batch::BatchHeader::parse(&bytes[covered..])
                .err()
                .unwrap_or(crate::batch::BatchError::Truncated {
                    needed: bytes.len() - covered + 1,
                    available: bytes.len() - covered,
                });
        return Err(LogError::CorruptBatch {
            position: covered,
            source,
        });
    }
    if headers.is_empty() {
        return Err(LogError::InvalidAppend("no record batches"));
    }
    // Kafka's LogValidator: a producer sends one (magic v2) batch per
    // partition; only coordinators and replicas append several.
    if matches!(origin, Origin::Leader(AppendOrigin::Client, _)) && headers.len() > 1 {
        return Err(LogError::InvalidAppend(
            "a producer's append holds more than one record batch",
        ));
    }
    Ok(headers)
}
