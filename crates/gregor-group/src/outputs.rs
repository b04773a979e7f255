//! What the state machine gives back and is handed: answers addressed to
//! the requests waiting for them, records to persist, and the member id
//! generator.

use crate::consumer::ConsumerHeartbeatAnswer;
use crate::protocol::{GroupError, JoinResponse, StoredRecord, SyncResponse, TxnProducer};

/// Names a request the caller waits on; its answer carries it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Names a write handed out with [`Output::Persist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistId(pub(crate) u64);

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// JoinGroup.
    Join(JoinResponse),
    /// SyncGroup.
    Sync(SyncResponse),
    /// Heartbeat.
    Heartbeat(Result<(), GroupError>),
    /// LeaveGroup: one result per member leaving.
    Leave(Vec<Result<(), GroupError>>),
    /// OffsetCommit and TxnOffsetCommit.
    Commit(Result<(), GroupError>),
    /// DeleteGroups (one group).
    Delete(Result<(), GroupError>),
    /// OffsetDelete.
    DeleteOffsets(OffsetDeletion),
    /// ConsumerGroupHeartbeat.
    ConsumerHeartbeat(Result<ConsumerHeartbeatAnswer, GroupError>),
}

/// The answer to an OffsetDelete: a group-level error, or one result per
/// partition asked for.
pub type OffsetDeletion = Result<Vec<((String, i32), Result<(), GroupError>)>, GroupError>;

/// Records for the caller to append to the group's partition of
/// `__consumer_offsets` in one batch, then report with
/// [`GroupStateMachine::persisted`](crate::GroupStateMachine::persisted) (with the offset of the first record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    /// Which write this is.
    pub id: PersistId,
    /// The group the records belong to.
    pub group: String,
    /// The records, in order.
    pub records: Vec<StoredRecord>,
    /// For a TxnOffsetCommit, the transaction's producer: the records go
    /// in one transactional batch of its id and epoch.
    pub producer: Option<TxnProducer>,
}

/// What the state machine asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer the request `request` with `response` (each request is
    /// answered exactly once).
    Respond {
        /// The request answered.
        request: RequestId,
        /// Its answer.
        response: Response,
    },
    /// Append these records, then report the outcome.
    Persist(Persist),
}

/// Where new member ids come from.
pub trait MemberIdGenerator {
    /// A fresh id for a member whose static instance id, or else client
    /// id, is `prefix` (Kafka's form is `{prefix}-{uuid}`).
    fn member_id(&mut self, prefix: &str) -> String;
}

impl<F: FnMut(&str) -> String> MemberIdGenerator for F {
    fn member_id(&mut self, prefix: &str) -> String {
        self(prefix)
    }
}

/// Adds the answer to `request` to `out`.
pub(crate) fn respond(out: &mut Vec<Output>, request: RequestId, response: Response) {
    out.push(Output::Respond { request, response });
}
