//! Client quotas through the admin client: DescribeClientQuotas and
//! AlterClientQuotas (what `kafka-configs --entity-type users|clients`
//! uses).

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request, AlterClientQuotasRequest, DescribeClientQuotasRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::{check, Admin};
use crate::ClientError;

/// What a describe filter matches of an entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// This name.
    Exact(String),
    /// The default entity.
    Default,
    /// Any entity of the type.
    Any,
}

/// One entity's quotas.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    /// The entity: (type, name), the name `None` for the default.
    pub entity: Vec<(String, Option<String>)>,
    /// The quotas: key → value.
    pub values: BTreeMap<String, f64>,
}

impl Admin {
    /// The quotas of the entities `components` match, (entity type,
    /// match); `strict`: only entities with no other part.
    pub async fn describe_client_quotas(
        &mut self,
        components: &[(String, QuotaMatch)],
        strict: bool,
    ) -> Result<Vec<QuotaEntry>, ClientError> {
        let mut request = DescribeClientQuotasRequest::default();
        request.strict = strict;
        request.components = components
            .iter()
            .map(|(entity_type, matching)| {
                let mut c = describe_client_quotas_request::ComponentData::default();
                c.entity_type = StrBytes::from_string(entity_type.clone());
                (c.match_type, c._match) = match matching {
                    QuotaMatch::Exact(name) => (0, Some(StrBytes::from_string(name.clone()))),
                    QuotaMatch::Default => (1, None),
                    QuotaMatch::Any => (2, None),
                };
                c
            })
            .collect();
        let response = self.connection.send(request, 1).await?;
        check(response.error_code, response.error_message.as_ref())?;
        Ok(response
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|entry| QuotaEntry {
                entity: entry
                    .entity
                    .into_iter()
                    .map(|e| (e.entity_type.to_string(), e.entity_name.map(|n| n.to_string())))
                    .collect(),
                values: entry.values.into_iter().map(|v| (v.key.to_string(), v.value)).collect(),
            })
            .collect())
    }

    /// Sets (`Some`) or removes (`None`) quotas of one entity ((type,
    /// name) pairs, a `None` name for the default).
    pub async fn alter_client_quotas(
        &mut self,
        entity: &[(String, Option<String>)],
        ops: &[(String, Option<f64>)],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let mut entry = alter_client_quotas_request::EntryData::default();
        entry.entity = entity
            .iter()
            .map(|(entity_type, name)| {
                let mut e = alter_client_quotas_request::EntityData::default();
                e.entity_type = StrBytes::from_string(entity_type.clone());
                e.entity_name = name.clone().map(StrBytes::from_string);
                e
            })
            .collect();
        entry.ops = ops
            .iter()
            .map(|(key, value)| {
                let mut op = alter_client_quotas_request::OpData::default();
                op.key = StrBytes::from_string(key.clone());
                op.value = value.unwrap_or(0.0);
                op.remove = value.is_none();
                op
            })
            .collect();
        let mut request = AlterClientQuotasRequest::default();
        request.entries = vec![entry];
        request.validate_only = validate_only;
        let response = self.connection.send(request, 1).await?;
        for entry in &response.entries {
            check(entry.error_code, entry.error_message.as_ref())?;
        }
        Ok(())
    }
}
