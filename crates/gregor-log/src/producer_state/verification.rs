//! Transaction verification (KIP-890 part 1, Kafka 3.9's
//! `transaction.partition.verification.enable`): before a transactional
//! batch opens its producer's transaction in a partition, the partition's
//! leader asks the transaction coordinator whether the partition was added
//! to that producer's ongoing transaction. The log's part is the
//! [`VerificationGuard`]: a token handed out when verification starts and
//! kept for the producer until its next transactional batch or marker.
//! The append that follows a successful verification must carry it; a
//! marker appended in between (the transaction ended, perhaps a new one
//! began without this partition) clears it, so that append is refused
//! instead of opening a transaction the coordinator does not know — one
//! nothing would ever end (a "hanging" transaction).
//!
//! As Kafka's `VerificationStateEntry`, an entry also keeps the lowest
//! sequence seen while verifying, so that a later batch of the producer is
//! not appended before an earlier one whose verification failed and is
//! retried.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ProducerError;

/// Kafka's `VerificationGuard`: a token unique in the process, naming one
/// verification of one producer's transaction in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

/// The next guard handed out (0 is [`VerificationGuard::NONE`]).
static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);

impl VerificationGuard {
    /// No guard (Kafka's `SENTINEL`): proves nothing.
    pub const NONE: Self = Self(0);

    fn fresh() -> Self {
        Self(NEXT_GUARD.fetch_add(1, Ordering::Relaxed))
    }
}

/// Whether an append checks that a transaction it opens was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnVerification {
    /// Not checked: verification is off, or the append is trusted.
    Skip,
    /// Checked: a transactional batch that would open its producer's
    /// transaction is taken only with the producer's current guard.
    /// [`VerificationGuard::NONE`] says no verification was done: the
    /// append is refused with a guard to verify
    /// ([`ProducerError::TransactionNotVerified`]).
    Guard(VerificationGuard),
}

/// One producer's verification under way (Kafka's `VerificationStateEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VerificationEntry {
    guard: VerificationGuard,
    started_ms: i64,
    /// The lowest sequence seen at `epoch` while verifying.
    lowest_sequence: i32,
    epoch: i16,
}

/// The verifications under way in one partition, by producer id. Kept in
/// memory only: a restart or a new leader verifies again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verifications {
    entries: BTreeMap<i64, VerificationEntry>,
}

impl Verifications {
    /// The guard of `producer_id`'s verification, started now unless one
    /// is under way; the lowest sequence is kept (a higher epoch restarts
    /// it).
    pub(crate) fn start(&mut self, producer_id: i64, epoch: i16, sequence: i32, now_ms: i64) -> VerificationGuard {
        let entry = self.entries.entry(producer_id).or_insert_with(|| VerificationEntry {
            guard: VerificationGuard::fresh(),
            started_ms: now_ms,
            lowest_sequence: sequence,
            epoch,
        });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.lowest_sequence = sequence;
        } else if epoch == entry.epoch && sequence < entry.lowest_sequence {
            entry.lowest_sequence = sequence;
        }
        entry.guard
    }

    /// Whether a batch of `producer_id` at `epoch` starting at `sequence`
    /// may open its transaction with `guard`: the guard must be the
    /// producer's current one, and (for a producer's own batch, with a
    /// sequence) no earlier sequence of the epoch may still be waiting.
    pub(crate) fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        guard: VerificationGuard,
    ) -> Result<(), ProducerError> {
        let not_verified = ProducerError::TransactionNotVerified {
            producer_id,
            producer_epoch: epoch,
            guard: None,
        };
        let entry = self.entries.get(&producer_id).ok_or(not_verified.clone())?;
        if guard == VerificationGuard::NONE || entry.guard != guard {
            return Err(not_verified);
        }
        if sequence >= 0 && epoch == entry.epoch && sequence > entry.lowest_sequence {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id,
                expected: entry.lowest_sequence,
                got: sequence,
            });
        }
        Ok(())
    }

    /// `producer_id` wrote a transactional batch or a marker: its
    /// transaction opened or ended, and the verification is over.
    pub(crate) fn clear(&mut self, producer_id: i64) {
        self.entries.remove(&producer_id);
    }

    /// True when no verification is under way.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets verifications started `expiration_ms` or longer ago (never
    /// followed by an append: the producer gave up).
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.entries
            .retain(|_, e| now_ms.saturating_sub(e.started_ms) < expiration_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_is_kept_until_cleared_and_never_handed_out_again() {
        let mut v = Verifications::default();
        let first = v.start(7, 0, 0, 10);
        assert_ne!(first, VerificationGuard::NONE);
        assert_eq!(v.start(7, 0, 0, 20), first, "a retry gets the same guard");
        assert_eq!(v.check(7, 0, 0, first), Ok(()));
        assert!(
            v.check(7, 0, 0, VerificationGuard::NONE).is_err(),
            "NONE proves nothing"
        );
        v.clear(7);
        assert!(matches!(
            v.check(7, 0, 0, first),
            Err(ProducerError::TransactionNotVerified { guard: None, .. })
        ));
        let second = v.start(7, 0, 0, 30);
        assert_ne!(second, first, "a stale guard does not match the next verification");
        assert!(v.check(7, 0, 0, first).is_err());
        assert!(v.check(8, 0, 0, second).is_err(), "another producer's guard");
    }

    #[test]
    fn a_later_sequence_waits_for_the_lowest_one_of_its_epoch() {
        let mut v = Verifications::default();
        let guard = v.start(7, 0, 5, 0);
        assert_eq!(v.start(7, 0, 9, 0), guard);
        assert!(matches!(
            v.check(7, 0, 9, guard),
            Err(ProducerError::OutOfOrderSequence {
                expected: 5,
                got: 9,
                ..
            })
        ));
        assert_eq!(v.check(7, 0, 5, guard), Ok(()));
        v.start(7, 1, 0, 0);
        assert_eq!(v.check(7, 1, 0, guard), Ok(()), "a new epoch starts again");
        assert_eq!(
            v.check(7, 1, -1, guard),
            Ok(()),
            "a coordinator's batch has no sequence"
        );
    }

    #[test]
    fn unused_verifications_expire() {
        let mut v = Verifications::default();
        v.start(7, 0, 0, 0);
        v.start(8, 0, 0, 50);
        v.expire(100, 100);
        assert!(v.check(7, 0, 0, VerificationGuard(1)).is_err());
        assert!(!v.is_empty());
        v.expire(150, 100);
        assert!(v.is_empty());
    }
}
