//! CreateTopics: partitions with a replication factor and config overrides.
//! As Kafka, the answer waits (up to the request's `timeout_ms`) until
//! every new partition has a leader in this broker's cluster view, so a
//! client that describes the topic right after sees it led; topics still
//! without leaders then get REQUEST_TIMED_OUT. A timeout of 0 answers at
//! once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_log::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use gregor_broker::{new_topic_assignment, validate_topic_name, Broker, Placement, Refusal};
use kafka_protocol::messages::create_topics_request::CreatableTopic;

/// The replica assignment a topic is created with, if the request gives
/// one (Kafka's rules: then neither a partition count nor a replication
/// factor; partitions 0..n of as many distinct replicas each).
fn given_assignment(topic: &CreatableTopic) -> Option<Result<Vec<Vec<i32>>, Refusal>> {
    if topic.assignments.is_empty() {
        return None;
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Some(Err((
            ResponseError::InvalidRequest,
            Some(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at \
                 the same time."
                    .into(),
            ),
        )));
    }
    let pairs = topic
        .assignments
        .iter()
        .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
        .collect();
    Some(new_topic_assignment(pairs))
}

/// How often a waiting CreateTopics looks at the cluster view.
const LEADER_POLL: Duration = Duration::from_millis(10);

/// Answers a CreateTopics request once the created topics are led (or
/// its timeout passes).
pub fn handle(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
) -> impl Future<Output = CreateTopicsResponse> + Send + 'static {
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    // A timeout of 0 asks for no wait at all (Kafka answers at once).
    let wait = request.timeout_ms > 0;
    let (response, mut created) = create(broker, request);
    if !wait {
        created.clear();
    }
    let broker = broker.clone();
    async move {
        let mut response = response;
        loop {
            let waiting: Vec<usize> = created
                .iter()
                .copied()
                .filter(|&i| !led(&broker, &response, i))
                .collect();
            if waiting.is_empty() {
                return response;
            }
            if Instant::now() >= deadline {
                for i in waiting {
                    let result = &mut response.topics[i];
                    result.error_code = ResponseError::RequestTimedOut.code();
                    result.error_message = Some(str_bytes("Operation timed out: the partitions have no leader yet"));
                }
                return response;
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }
}

/// Whether every partition of the `i`th topic of `response` has a leader.
fn led(broker: &Broker, response: &CreateTopicsResponse, i: usize) -> bool {
    let topic = &response.topics[i];
    let replicas = broker.replicas();
    (0..topic.num_partitions.max(0) as u32).all(|p| {
        replicas
            .partition_record(&TopicPartition::new(topic.name.0.as_str(), p))
            .is_some_and(|r| r.state.leader >= 0)
    })
}

/// Creates (or checks, with `validate_only`) each topic; returns the
/// answer and the indexes of the topics created.
fn create(broker: &Broker, request: CreateTopicsRequest) -> (CreateTopicsResponse, Vec<usize>) {
    let mut response = CreateTopicsResponse::default();
    let mut created = Vec::new();
    let names: Vec<String> = request.topics.iter().map(|t| t.name.0.to_string()).collect();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        // Null unless refused, as Kafka answers (the codec's default is "").
        result.error_message = None;
        // KafkaApis refuses these before the controller sees the request.
        let refused = if name == CLUSTER_METADATA_TOPIC {
            Some(format!(
                "Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."
            ))
        } else if names.iter().filter(|n| **n == name).count() > 1 {
            Some("Found multiple entries for this topic.".to_string())
        } else {
            None
        };
        if let Some(message) = refused {
            result.error_code = ResponseError::InvalidRequest.code();
            result.error_message = Some(str_bytes(&message));
            response.topics.push(result);
            continue;
        }
        let given = given_assignment(&topic);
        let partitions = match &given {
            Some(Ok(given)) => given.len() as u32,
            _ if topic.num_partitions < 0 => broker.config().num_partitions,
            _ => topic.num_partitions as u32,
        };
        result.num_partitions = partitions as i32;
        let replication = u16::try_from(topic.replication_factor).ok();
        result.replication_factor = match &given {
            Some(Ok(given)) => given.first().map_or(0, |r| r.len()) as i16,
            _ => replication.unwrap_or(broker.config().default_replication_factor) as i16,
        };
        let nulls: Vec<&str> = topic
            .configs
            .iter()
            .filter(|c| c.value.is_none())
            .map(|c| c.name.as_str())
            .collect();
        let overrides: std::collections::BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        // Kafka's order (ZkAdminManager.createTopics): an existing topic
        // first, then null config values, then the rest.
        let outcome = existing(broker, &name)
            .and_then(|_| refuse_null_configs(&nulls))
            .and_then(|_| validate_topic_name(&name).map_err(|e| (e, None)))
            .and_then(|_| match &given {
                Some(Err(refusal)) => Err(refusal.clone()),
                _ => Ok(()),
            })
            .and_then(|_| match topic.replication_factor {
                // The catalog checks it against the live brokers.
                -1 | 1.. => Ok(()),
                _ => Err((
                    ResponseError::InvalidReplicationFactor,
                    Some("Replication factor must be larger than 0, or -1 to use the default value.".to_string()),
                )),
            })
            .and_then(|_| {
                broker
                    .topics()
                    .log_config(&overrides)
                    .map(|_| ())
                    .map_err(|m| (ResponseError::InvalidConfig, Some(m)))
            })
            .and_then(|_| {
                if !request.validate_only {
                    let placement = match given {
                        Some(Ok(given)) => Placement::Given(given),
                        _ => Placement::Spread(replication.unwrap_or(broker.config().default_replication_factor)),
                    };
                    broker
                        .topics()
                        .create_placed(&name, partitions, placement, overrides)
                        .map(|_| ())
                } else {
                    Ok(())
                }
            });
        match outcome {
            Err((error, message)) => {
                result.error_code = error.code();
                result.error_message = message.map(|m| str_bytes(&m));
            }
            Ok(()) if !request.validate_only => created.push(response.topics.len()),
            Ok(()) => {}
        }
        response.topics.push(result);
    }
    (response, created)
}

/// Kafka's name of the KRaft metadata log, which no client may create.
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// TOPIC_ALREADY_EXISTS for a topic this broker knows, with Kafka's
/// message (the creation itself checks again, atomically).
fn existing(broker: &Broker, name: &str) -> Result<(), Refusal> {
    match broker.topics().get(name) {
        Some(_) => Err((
            ResponseError::TopicAlreadyExists,
            Some(format!("Topic '{name}' already exists.")),
        )),
        None => Ok(()),
    }
}

/// Kafka's refusal of configs without a value: INVALID_CONFIG naming them
/// (a null is no value, not the empty one).
fn refuse_null_configs(nulls: &[&str]) -> Result<(), Refusal> {
    if nulls.is_empty() {
        return Ok(());
    }
    Err((
        ResponseError::InvalidConfig,
        Some(format!(
            "Null value not supported for topic configs: {}",
            nulls.join(",")
        )),
    ))
}
