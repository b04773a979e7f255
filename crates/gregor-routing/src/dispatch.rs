//! The dispatcher: a short table from request to handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::protocol::Encodable;

use crate::api;
use crate::api::produce::ProduceOutcome;
use crate::request::{Frame, Request};
use crate::splice::Splice;
use gregor_broker::Broker;

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
    },
    /// Nothing (`acks=0` produce).
    NoResponse,
    /// No answer can be given (a handler failed): the connection closes,
    /// as Kafka closes it on an unexpected error.
    Close,
    /// Not yet: an operation that waits (a Fetch for `min_bytes`) and then
    /// gives the outcome; the connection's processor runs it.
    Delayed(Pin<Box<dyn Future<Output = Outcome> + Send>>),
}

fn respond<T: Encodable + Send + 'static>(response: T, version: i16) -> Outcome {
    Outcome::Respond {
        version,
        encode: Box::new(move |out| response.encode(out, version).map_err(|e| e.to_string())),
        splices: Vec::new(),
    }
}

/// Runs a handler that waits for a coordinator's write to reach the
/// in-sync replicas (commits, transaction steps, markers) on the runtime's
/// blocking pool instead of a handler thread: the followers' fetches that
/// acknowledge the write need handler threads, and a pool full of waiting
/// commits would leave none for them.
fn off_handler<T: Encodable + Send + 'static>(
    broker: &Arc<Broker>,
    version: i16,
    handle: impl FnOnce(&Broker) -> T + Send + 'static,
) -> Outcome {
    let broker = broker.clone();
    Outcome::Delayed(Box::pin(async move {
        match tokio::task::spawn_blocking(move || handle(&broker)).await {
            Ok(response) => respond(response, version),
            Err(e) => {
                tracing::error!("a request handler failed: {e}; closing its connection");
                Outcome::Close
            }
        }
    }))
}

/// Runs a decoded request (on a handler thread: it may block on disk).
pub fn dispatch(broker: &Arc<Broker>, frame: Frame) -> Outcome {
    let version = frame.header.request_api_version;
    match frame.request {
        Request::ApiVersions(_) => respond(api::api_versions::handle(false), version),
        Request::ApiVersionsTooNew => respond(api::api_versions::handle(true), 0),
        Request::Metadata(r) => respond(api::metadata::handle(broker, r, version), version),
        Request::Produce(r) => match api::produce::handle(broker, r, version) {
            ProduceOutcome::Respond(response) => respond(response, version),
            ProduceOutcome::NoResponse => Outcome::NoResponse,
            ProduceOutcome::Delayed(waiting) => Outcome::Delayed(Box::pin(async move {
                match waiting.await {
                    Some(response) => respond(response, version),
                    None => Outcome::NoResponse,
                }
            })),
        },
        Request::Fetch(r) => match api::fetch::handle(broker, r, version) {
            Ok((response, splices)) => respond_spliced(response, splices, version),
            Err(waiting) => Outcome::Delayed(Box::pin(async move {
                let (response, splices) = waiting.await;
                respond_spliced(response, splices, version)
            })),
        },
        Request::ListOffsets(r) => respond(api::list_offsets::handle(broker, r, version), version),
        Request::CreateTopics(r) => {
            let created = api::create_topics::handle(broker, r);
            Outcome::Delayed(Box::pin(async move { respond(created.await, version) }))
        }
        Request::DeleteTopics(r) => {
            let deleted = api::delete_topics::handle(broker, r);
            Outcome::Delayed(Box::pin(async move { respond(deleted.await, version) }))
        }
        Request::InitProducerId(r) => {
            off_handler(broker, version, move |b| api::init_producer_id::handle(b, r, version))
        }
        Request::AddPartitionsToTxn(r) => off_handler(broker, version, move |b| {
            api::add_partitions_to_txn::handle(b, r, version)
        }),
        Request::AddOffsetsToTxn(r) => {
            off_handler(broker, version, move |b| api::add_offsets_to_txn::handle(b, r, version))
        }
        Request::EndTxn(r) => off_handler(broker, version, move |b| api::end_txn::handle(b, r, version)),
        Request::DescribeTransactions(r) => respond(api::describe_transactions::handle(broker, r), version),
        Request::ListTransactions(r) => respond(api::list_transactions::handle(broker, r, version), version),
        Request::WriteTxnMarkers(r) => off_handler(broker, version, move |b| api::write_txn_markers::handle(b, r)),
        Request::DescribeProducers(r) => respond(api::describe_producers::handle(broker, r), version),
        Request::DescribeConfigs(r) => respond(api::describe_configs::handle(broker, r, version), version),
        Request::CreatePartitions(r) => respond(api::create_partitions::handle(broker, r), version),
        Request::FindCoordinator(r) => respond(api::find_coordinator::handle(broker, r, version), version),
        Request::JoinGroup(r) => {
            let client_id = frame.header.client_id.as_deref().unwrap_or("").to_string();
            let joined = api::join_group::handle(broker, r, version, client_id, frame.client_host);
            Outcome::Delayed(Box::pin(async move { respond(joined.await, version) }))
        }
        Request::SyncGroup(r) => {
            let synced = api::sync_group::handle(broker, r, version);
            Outcome::Delayed(Box::pin(async move { respond(synced.await, version) }))
        }
        Request::Heartbeat(r) => respond(api::heartbeat::handle(broker, r), version),
        Request::LeaveGroup(r) => respond(api::leave_group::handle(broker, r, version), version),
        Request::OffsetCommit(r) => off_handler(broker, version, move |b| api::offset_commit::handle(b, r)),
        Request::OffsetFetch(r) => respond(api::offset_fetch::handle(broker, r, version), version),
        Request::DescribeGroups(r) => respond(api::describe_groups::handle(broker, r, version), version),
        Request::ListGroups(r) => respond(api::list_groups::handle(broker, r, version), version),
        Request::DeleteGroups(r) => respond(api::delete_groups::handle(broker, r), version),
        Request::DeleteRecords(r) => respond(api::delete_records::handle(broker, r), version),
        Request::OffsetForLeaderEpoch(r) => respond(api::offset_for_leader_epoch::handle(broker, r), version),
        Request::IncrementalAlterConfigs(r) => respond(api::incremental_alter_configs::handle(broker, r), version),
        Request::TxnOffsetCommit(r) => off_handler(broker, version, move |b| api::txn_offset_commit::handle(b, r)),
        Request::DescribeCluster(r) => respond(api::describe_cluster::handle(broker, r, version), version),
        Request::DescribeLogDirs(r) => respond(api::describe_log_dirs::handle(broker, r), version),
        Request::AlterConfigs(r) => respond(api::alter_configs::handle(broker, r), version),
        Request::OffsetDelete(r) => off_handler(broker, version, move |b| api::offset_delete::handle(b, r)),
        Request::LeaderAndIsr(r) => respond_zk(api::leader_and_isr::handle(broker, r), version),
        Request::UpdateMetadata(r) => respond_zk(api::update_metadata::handle(broker, r), version),
        Request::StopReplica(r) => respond_zk(api::stop_replica::handle(broker, r), version),
        Request::AlterPartitionReassignments(r) => {
            let answer = api::reassignments::alter(broker, r);
            Outcome::Delayed(Box::pin(async move { respond(answer.await, version) }))
        }
        Request::ListPartitionReassignments(r) => {
            let answer = api::reassignments::list(broker, r);
            Outcome::Delayed(Box::pin(async move { respond(answer.await, version) }))
        }
        Request::ElectLeaders(r) => {
            let answer = api::elect_leaders::handle(broker, r, version);
            Outcome::Delayed(Box::pin(async move { respond(answer.await, version) }))
        }
        Request::ControlledShutdown(r) => {
            let answer = api::controlled_shutdown::handle(broker, r);
            Outcome::Delayed(Box::pin(async move { respond_zk(answer.await, version) }))
        }
    }
}

/// A response of the controller APIs (the older codec's types).
fn respond_zk<T: kafka_protocol_zk::protocol::Encodable + Send + 'static>(response: T, version: i16) -> Outcome {
    Outcome::Respond {
        version,
        encode: Box::new(move |out| response.encode(out, version).map_err(|e| e.to_string())),
        splices: Vec::new(),
    }
}

fn respond_spliced<T: Encodable + Send + 'static>(response: T, splices: Vec<Splice>, version: i16) -> Outcome {
    match respond(response, version) {
        Outcome::Respond { version, encode, .. } => Outcome::Respond {
            version,
            encode,
            splices,
        },
        other => other,
    }
}
