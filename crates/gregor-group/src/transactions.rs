//! Transactional offset commits (KIP-98): a producer's TxnOffsetCommit is
//! written as one transactional batch of its producer id and epoch to the
//! group's `__consumer_offsets` partition and, once acknowledged, waits
//! there pending — invisible to OffsetFetch — until the transaction
//! coordinator's COMMIT or ABORT marker reaches that partition
//! ([`GroupStateMachine::complete_transaction`]). A reload replays the
//! same rules from the log ([`crate::LoadedRecord`]), so a transaction
//! still open then stays pending for its marker to come.

use crate::machine::GroupStateMachine;
use crate::offsets::offset_records;
use crate::outputs::{respond, Output, RequestId, Response};
use crate::protocol::CommittedOffset;
use crate::protocol::{GroupError, MemberOf, TxnProducer};
use crate::writes::AfterWrite;

impl GroupStateMachine {
    /// TxnOffsetCommit for `producer` (id, epoch, and how its batch is
    /// checked for verification): checks the
    /// member as Kafka does for transactional commits (v0–v2 name none:
    /// generation −1, no member id; v3 names its generation and member,
    /// checked as OffsetCommit checks them, except that a rebalance under
    /// way does not refuse it), then writes every offset in one
    /// transactional batch; the commit is answered ([`Response::Commit`])
    /// once it is acknowledged, and the offsets stay pending until the
    /// transaction ends.
    pub fn txn_commit(
        &mut self,
        request_id: RequestId,
        producer: TxnProducer,
        member: MemberOf<'_>,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if let Err(e) = self.txn_commit_check(member) {
            respond(&mut out, request_id, Response::Commit(Err(e)));
            return out;
        }
        if offsets.is_empty() {
            respond(&mut out, request_id, Response::Commit(Ok(())));
            return out;
        }
        let (records, offsets) = offset_records(member.group_id, offsets);
        let then = AfterWrite::TxnCommit {
            request: request_id,
            producer,
            offsets,
        };
        self.writes.enqueue(member.group_id, records, then, &mut out);
        out
    }

    /// `producer_id`'s transaction ended: its COMMIT (`commit`) or ABORT
    /// marker is in the `__consumer_offsets` partition of the groups
    /// `owned` picks (Kafka's `handleTxnCompletion`). The offsets it wrote
    /// there become the committed ones (unless a record later in the log
    /// is committed already) or are dropped.
    ///
    /// A write of the producer still out now is taken as appended after
    /// the marker: its offsets stay pending. The transaction coordinator
    /// starts no transaction of the producer, and the producer sends no
    /// offsets of the ending one, between the marker and this report.
    pub fn complete_transaction(&mut self, owned: impl Fn(&str) -> bool, producer_id: i64, commit: bool) {
        self.offsets.complete(&owned, producer_id, commit);
    }

    /// Kafka's `validateOffsetCommit` for a transactional commit: a
    /// commit naming no generation, member or instance is taken whatever
    /// the group's state (the producer is no member); one naming them
    /// must be the group's current member and generation.
    fn txn_commit_check(&self, m: MemberOf<'_>) -> Result<(), GroupError> {
        if m.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        if m.generation_id < 0 && m.member_id.is_empty() && m.instance_id.is_none() {
            return Ok(());
        }
        if let Some(group) = self.consumer_groups.get(m.group_id) {
            // A consumer-protocol member at its epoch; Kafka answers a
            // stale one ILLEGAL_GENERATION here.
            return group.commit_check(m.member_id, m.generation_id).map_err(|e| match e {
                GroupError::StaleMemberEpoch => GroupError::IllegalGeneration,
                e => e,
            });
        }
        let group = self.groups.get(m.group_id).filter(|g| !g.members.is_empty());
        match group {
            None if m.generation_id < 0 => Ok(()),
            None => Err(GroupError::UnknownMemberId),
            Some(group) => {
                group.member_check(m.member_id, m.instance_id)?;
                if m.generation_id != group.generation {
                    return Err(GroupError::IllegalGeneration);
                }
                Ok(())
            }
        }
    }
}
