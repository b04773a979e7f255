//! DescribeClientQuotas: the quotas of the user and client-id entities a
//! filter matches, as Kafka 3.9 (ZooKeeper mode) answers.
//!
//! A component matches its entity type by name (EXACT, 0), the default
//! entity (DEFAULT, 1) or any entity of the type (SPECIFIED, 2); without
//! `strict` an entity may have parts the filter does not name. A bad
//! filter fails the whole request: INVALID_REQUEST (duplicate or empty
//! entity types, an unknown match type), UNSUPPORTED_VERSION (an entity
//! type other than `user`, `client-id`, `ip`), with Kafka's messages.

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use gregor_broker::quotas::{FilterComponent, MatchType, QuotaRefusal};
use gregor_broker::Broker;

/// Answers a DescribeClientQuotas request.
pub fn handle(broker: &Broker, request: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    let mut response = DescribeClientQuotasResponse::default();
    let found = filter(&request).and_then(|components| broker.quotas().describe(&components, request.strict));
    match found {
        Ok(entities) => {
            response.entries = Some(
                entities
                    .into_iter()
                    .map(|(entity, values)| {
                        let mut entry = EntryData::default();
                        let parts = [
                            (gregor_broker::quotas::entity::USER, entity.user),
                            (gregor_broker::quotas::entity::CLIENT_ID, entity.client_id),
                        ];
                        for (entity_type, name) in parts {
                            if let Some(name) = name {
                                let mut data = EntityData::default();
                                data.entity_type = str_bytes(entity_type);
                                data.entity_name = name.to_wire().map(str_bytes);
                                entry.entity.push(data);
                            }
                        }
                        for (key, value) in values {
                            let mut data = ValueData::default();
                            data.key = str_bytes(&key);
                            data.value = value;
                            entry.values.push(data);
                        }
                        entry
                    })
                    .collect(),
            );
        }
        Err((error, message)) => {
            response.error_code = error.code();
            response.error_message = Some(str_bytes(&message));
            response.entries = None;
        }
    }
    response
}

fn filter(request: &DescribeClientQuotasRequest) -> Result<Vec<FilterComponent>, QuotaRefusal> {
    request
        .components
        .iter()
        .map(|component| {
            let match_type = match (component.match_type, &component._match) {
                (0, Some(name)) => MatchType::Exact(name.to_string()),
                (0, None) => {
                    return Err((
                        ResponseError::InvalidRequest,
                        "Unexpected null match for exact type".to_string(),
                    ))
                }
                (1, _) => MatchType::Default,
                (2, _) => MatchType::Specified,
                (other, _) => return Err((ResponseError::InvalidRequest, format!("Unexpected match type: {other}"))),
            };
            Ok(FilterComponent {
                entity_type: component.entity_type.to_string(),
                match_type,
            })
        })
        .collect()
}
