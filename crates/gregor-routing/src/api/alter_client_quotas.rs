//! AlterClientQuotas: sets or removes quotas of user and client-id
//! entities, as Kafka 3.9 (ZooKeeper mode) does — each entry on its own
//! (an entry's error does not stop the others), written to
//! `/config/users` / `/config/clients` with a `/config/changes`
//! notification so every broker applies it; `validate_only` checks only.
//! Errors are INVALID_REQUEST with Kafka's message (an unknown key, a
//! fraction for a byte rate, an empty or unknown entity).

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};

use super::str_bytes;
use gregor_broker::Broker;

/// Answers an AlterClientQuotas request.
pub fn handle(broker: &Broker, request: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let mut response = AlterClientQuotasResponse::default();
    for entry in request.entries {
        let entity: Vec<(String, Option<String>)> = entry
            .entity
            .iter()
            .map(|e| (e.entity_type.to_string(), e.entity_name.as_ref().map(|n| n.to_string())))
            .collect();
        let ops: Vec<(String, Option<f64>)> = entry
            .ops
            .iter()
            .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
            .collect();
        let mut result = EntryData::default();
        if let Err((error, message)) = broker.quotas().alter(&entity, &ops, request.validate_only) {
            result.error_code = error.code();
            result.error_message = Some(str_bytes(&message));
        }
        result.entity = entry
            .entity
            .into_iter()
            .map(|e| {
                let mut data = EntityData::default();
                data.entity_type = e.entity_type;
                data.entity_name = e.entity_name;
                data
            })
            .collect();
        response.entries.push(result);
    }
    response
}
