//! The dispatcher: a short table from request to handler.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::protocol::Encodable;

use crate::api;
use crate::api::produce::ProduceOutcome;
use crate::authorize::{configs as config_authz, gate, operations, topics as authz, transactions as txn_authz, Access};
use crate::outcome::{respond, respond_zk, Outcome};
use crate::request::{Frame, Request};
use crate::splice::Splice;
use gregor_broker::quotas::QuotaType;
use gregor_broker::Broker;

/// Runs a handler that waits for a coordinator's write to reach the
/// in-sync replicas (commits, transaction steps, markers) on the runtime's
/// blocking pool instead of a handler thread: the followers' fetches that
/// acknowledge the write need handler threads, and a pool full of waiting
/// commits would leave none for them.
fn off_handler<T: Encodable + Send + 'static>(
    broker: &Arc<Broker>,
    version: i16,
    handle: impl FnOnce(&Arc<Broker>) -> T + Send + 'static,
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
    let session = frame.session.clone();
    let access = Access::new(broker, &session);
    // Quotas are charged to the principal's name (`ANONYMOUS` without
    // authentication) and the client id, as Kafka's session.sanitizedUser.
    let user = session.principal.name.as_str();
    if let Some(refused) = gate::refuse(&access, &frame.request, version) {
        return refused;
    }
    match frame.request {
        Request::ApiVersions(_) => respond(
            api::api_versions::handle(false, version, broker.config().transactions.transaction_version),
            version,
        ),
        Request::ApiVersionsTooNew => respond(api::api_versions::handle(true, 0, 0), 0),
        Request::Metadata(mut r) => {
            let merge = authz::metadata(&access, broker, &mut r, version);
            let (topic_ops, cluster_ops) = (
                r.include_topic_authorized_operations,
                r.include_cluster_authorized_operations,
            );
            let mut response = api::metadata::handle(broker, r, version, &session.listener);
            operations::metadata(&access, &mut response, version, topic_ops, cluster_ops);
            respond(merged(response, merge), version)
        }
        Request::CreateAcls(r) => respond(api::acls::create(broker, &access, r), version),
        Request::DescribeAcls(r) => respond(api::acls::describe(broker, &access, r), version),
        Request::DeleteAcls(r) => respond(api::acls::delete(broker, &access, r), version),
        Request::Produce(mut r) => {
            let merge = authz::produce(&access, &mut r);
            // Kafka counts the whole request against producer_byte_rate.
            let client = frame.header.client_id.as_deref().unwrap_or("");
            let bandwidth = broker
                .quotas()
                .record(QuotaType::Produce, user, client, frame.size as f64);
            let started = Instant::now();
            let produced = api::produce::handle(broker, r, version, client);
            // The answer carries the longer of the two throttles, as Kafka's.
            let throttle = bandwidth.max(request_time_throttle(broker, user, client, started));
            let throttled = move |mut response: kafka_protocol::messages::ProduceResponse| {
                merge(&mut response);
                response.throttle_time_ms = throttle;
                respond(response, version).muted_at_least(throttle)
            };
            match produced {
                ProduceOutcome::Respond(response) => throttled(response),
                ProduceOutcome::NoResponse => Outcome::NoResponse.muted_at_least(throttle),
                ProduceOutcome::Delayed(waiting) => Outcome::Delayed(Box::pin(async move {
                    match waiting.await {
                        Some(response) => throttled(response),
                        None => Outcome::NoResponse.muted_at_least(throttle),
                    }
                })),
            }
        }
        Request::Fetch(r) => {
            let follower = if version >= 15 {
                r.replica_state.replica_id.0 >= 0
            } else {
                r.replica_id.0 >= 0
            };
            let client = frame
                .header
                .client_id
                .clone()
                .map(|c| c.to_string())
                .unwrap_or_default();
            let mut r = r;
            let merge = authz::fetch(&access, broker, &mut r, version, follower);
            if !follower {
                // As Kafka: a fetch asks for no more than the quota allows
                // in one monitored window.
                if let Some(most) = broker.quotas().max_value_in_window(QuotaType::Fetch, user, &client) {
                    r.max_bytes = r.max_bytes.min(most.clamp(1.0, f64::from(i32::MAX)) as i32);
                }
            }
            let started = Instant::now();
            let fetched = api::fetch::handle(broker, r, version, &session.listener);
            let request_throttle = if follower {
                0
            } else {
                request_time_throttle(broker, user, &client, started)
            };
            let quotas = broker.clone();
            let user = user.to_string();
            // A consumer's fetch counts its records against
            // consumer_byte_rate; replication is not a client's traffic.
            let throttled = move |mut response: kafka_protocol::messages::FetchResponse, splices: Vec<Splice>| {
                merge(&mut response);
                let bytes: u64 = splices.iter().map(|s| s.region.len()).sum();
                let throttle = if follower {
                    0
                } else {
                    quotas.quotas().record(QuotaType::Fetch, &user, &client, bytes as f64)
                };
                let throttle = throttle.max(request_throttle);
                if throttle == 0 {
                    return respond_spliced(response, splices, version);
                }
                // Over the quota: as Kafka, the records are not sent (nor
                // counted) — an empty answer with the throttle time, and the
                // channel muted for it.
                quotas.quotas().unrecord(QuotaType::Fetch, &user, &client, bytes as f64);
                let mut empty = kafka_protocol::messages::FetchResponse::default();
                empty.throttle_time_ms = throttle;
                empty.session_id = response.session_id;
                respond(empty, version).muted_at_least(throttle)
            };
            match fetched {
                Ok((response, splices)) => throttled(response, splices),
                Err(waiting) => Outcome::Delayed(Box::pin(async move {
                    let (response, splices) = waiting.await;
                    throttled(response, splices)
                })),
            }
        }
        Request::ListOffsets(mut r) => {
            let merge = authz::list_offsets(&access, &mut r);
            respond(merged(api::list_offsets::handle(broker, r, version), merge), version)
        }
        Request::CreateTopics(mut r) => {
            let merge = authz::create_topics(&access, &mut r);
            // The configs shown only with DescribeConfigs, decided now: the
            // answer comes after this frame's session is gone.
            let (broker2, session2) = (broker.clone(), session.clone());
            let created = api::create_topics::handle(broker, r);
            Outcome::Delayed(Box::pin(async move {
                let mut response = merged(created.await, merge);
                authz::created_topic_configs(&Access::new(&broker2, &session2), &mut response);
                respond(response, version)
            }))
        }
        Request::DeleteTopics(mut r) => {
            let merge = authz::delete_topics(&access, broker, &mut r);
            let deleted = api::delete_topics::handle(broker, r);
            Outcome::Delayed(Box::pin(async move { respond(merged(deleted.await, merge), version) }))
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
        Request::DescribeTransactions(mut r) => {
            let merge = txn_authz::describe_transactions(&access, &mut r);
            respond(merged(api::describe_transactions::handle(broker, r), merge), version)
        }
        Request::ListTransactions(r) => {
            let mut response = api::list_transactions::handle(broker, r, version);
            txn_authz::list_transactions(&access, &mut response);
            respond(response, version)
        }
        Request::WriteTxnMarkers(r) => off_handler(broker, version, move |b| api::write_txn_markers::handle(b, r)),
        Request::DescribeProducers(mut r) => {
            let merge = txn_authz::describe_producers(&access, &mut r);
            respond(merged(api::describe_producers::handle(broker, r), merge), version)
        }
        Request::DescribeConfigs(mut r) => {
            let merge = config_authz::describe_configs(&access, &mut r);
            respond(
                merged(api::describe_configs::handle(broker, r, version), merge),
                version,
            )
        }
        Request::CreatePartitions(mut r) => {
            let merge = authz::create_partitions(&access, &mut r);
            respond(merged(api::create_partitions::handle(broker, r), merge), version)
        }
        Request::FindCoordinator(r) => {
            let keys = r.clone();
            let mut response = api::find_coordinator::handle(broker, r, version, &session.listener);
            authz::find_coordinator(&access, &keys, &mut response);
            respond(response, version)
        }
        Request::JoinGroup(r) => {
            let client_id = frame.header.client_id.as_deref().unwrap_or("").to_string();
            let joined = api::join_group::handle(broker, r, version, client_id, frame.session.client_host());
            Outcome::Delayed(Box::pin(async move { respond(joined.await, version) }))
        }
        Request::SyncGroup(r) => {
            let synced = api::sync_group::handle(broker, r, version);
            Outcome::Delayed(Box::pin(async move { respond(synced.await, version) }))
        }
        Request::Heartbeat(r) => respond(api::heartbeat::handle(broker, r), version),
        Request::LeaveGroup(r) => respond(api::leave_group::handle(broker, r, version), version),
        Request::OffsetCommit(mut r) => {
            let merge = authz::offset_commit(&access, &mut r);
            off_handler(broker, version, move |b| {
                merged(api::offset_commit::handle(b, r), merge)
            })
        }
        Request::OffsetFetch(r) => {
            let asked = r.clone();
            let mut response = api::offset_fetch::handle(broker, r, version);
            authz::offset_fetch(&access, &asked, &mut response);
            respond(response, version)
        }
        Request::DescribeGroups(mut r) => {
            let merge = authz::describe_groups(&access, &mut r);
            let asked = r.include_authorized_operations;
            let mut response = api::describe_groups::handle(broker, r, version);
            operations::describe_groups(&access, &mut response, version, asked);
            respond(merged(response, merge), version)
        }
        Request::ListGroups(r) => {
            let mut response = api::list_groups::handle(broker, r, version);
            authz::list_groups(&access, &mut response);
            respond(response, version)
        }
        Request::ConsumerGroupHeartbeat(r) => {
            let client_id = frame.header.client_id.as_deref().unwrap_or("").to_string();
            let client_host = frame.session.client_host();
            off_handler(broker, version, move |b| {
                api::consumer_group_heartbeat::handle(b, r, version, client_id, client_host)
            })
        }
        Request::ConsumerGroupDescribe(mut r) => {
            let merge = authz::consumer_group_describe(&access, &mut r);
            let asked = r.include_authorized_operations;
            let mut response = api::consumer_group_describe::handle(broker, r, version);
            operations::consumer_group_describe(&access, &mut response, asked);
            respond(merged(response, merge), version)
        }
        Request::DeleteGroups(mut r) => {
            let merge = authz::delete_groups(&access, &mut r);
            respond(merged(api::delete_groups::handle(broker, r), merge), version)
        }
        Request::DeleteRecords(mut r) => {
            let merge = authz::delete_records(&access, &mut r);
            respond(merged(api::delete_records::handle(broker, r), merge), version)
        }
        Request::OffsetForLeaderEpoch(mut r) => {
            let merge = authz::offset_for_leader_epoch(&access, &mut r);
            respond(merged(api::offset_for_leader_epoch::handle(broker, r), merge), version)
        }
        Request::IncrementalAlterConfigs(mut r) => {
            let merge = config_authz::incremental_alter_configs(&access, &mut r);
            respond(
                merged(api::incremental_alter_configs::handle(broker, r), merge),
                version,
            )
        }
        Request::TxnOffsetCommit(mut r) => {
            let merge = txn_authz::txn_offset_commit(&access, &mut r);
            off_handler(broker, version, move |b| {
                merged(api::txn_offset_commit::handle(b, r, version), merge)
            })
        }
        Request::DescribeCluster(r) => {
            let asked = r.include_cluster_authorized_operations;
            let mut response = api::describe_cluster::handle(broker, r, version, &session.listener);
            operations::describe_cluster(&access, &mut response, asked);
            respond(response, version)
        }
        Request::DescribeLogDirs(r) => respond(api::describe_log_dirs::handle(broker, r), version),
        Request::AlterConfigs(mut r) => {
            let merge = config_authz::alter_configs(&access, &mut r);
            respond(merged(api::alter_configs::handle(broker, r), merge), version)
        }
        Request::OffsetDelete(mut r) => {
            let merge = txn_authz::offset_delete(&access, &mut r);
            off_handler(broker, version, move |b| {
                merged(api::offset_delete::handle(b, r), merge)
            })
        }
        Request::DescribeClientQuotas(r) => respond(api::describe_client_quotas::handle(broker, r), version),
        Request::AlterClientQuotas(r) => respond(api::alter_client_quotas::handle(broker, r), version),
        // A SASL listener's connection answers these itself until it has
        // authenticated: here they come from another listener, or again.
        Request::SaslHandshake(_) => {
            let mut response = kafka_protocol::messages::SaslHandshakeResponse::default();
            response.error_code = kafka_protocol::error::ResponseError::IllegalSaslState.code();
            respond(response, version)
        }
        Request::SaslAuthenticate(_) => {
            let mut response = kafka_protocol::messages::SaslAuthenticateResponse::default();
            response.error_code = kafka_protocol::error::ResponseError::IllegalSaslState.code();
            response.error_message = Some(kafka_protocol::protocol::StrBytes::from_static_str(
                "SaslAuthenticate request received after successful authentication or on a listener without SASL",
            ));
            respond(response, version)
        }
        Request::DescribeUserScramCredentials(r) => respond(api::user_scram_credentials::describe(broker, r), version),
        Request::AlterUserScramCredentials(r) => {
            off_handler(broker, version, move |b| api::user_scram_credentials::alter(b, r))
        }
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

/// A handler's response with the refused entries added.
fn merged<R>(mut response: R, merge: crate::authorize::Merge<R>) -> R {
    merge(&mut response);
    response
}

/// Records the handler time since `started` against `user`'s client's
/// `request_percentage` (percent of one thread's second); the throttle.
pub(crate) fn request_time_throttle(broker: &Broker, user: &str, client_id: &str, started: Instant) -> i32 {
    let percent = started.elapsed().as_nanos() as f64 * 100.0 / 1e9;
    broker.quotas().record(QuotaType::Request, user, client_id, percent)
}

fn respond_spliced<T: Encodable + Send + 'static>(response: T, splices: Vec<Splice>, version: i16) -> Outcome {
    match respond(response, version) {
        Outcome::Respond {
            version,
            encode,
            throttle_ms,
            ..
        } => Outcome::Respond {
            version,
            encode,
            splices,
            throttle_ms,
        },
        other => other,
    }
}
