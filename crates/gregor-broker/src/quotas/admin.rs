//! DescribeClientQuotas and AlterClientQuotas as Kafka (ZooKeeper mode)
//! answers them: filters with strict or partial matching, alterations
//! checked key by key, written to the store and applied here.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::entity::{EntityName, QuotaEntity, CLIENT_ID, USER};
use super::{numeric, ClientQuotas, QUOTA_KEYS};

/// Why a quota request was refused: the error and its message.
pub type QuotaRefusal = (ResponseError, String);

/// Entities with their quotas (key → value).
pub type DescribedQuotas = Vec<(QuotaEntity, BTreeMap<String, f64>)>;

/// What a filter component matches of its entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchType {
    /// This name.
    Exact(String),
    /// The default entity.
    Default,
    /// Any entity of the type (not the default's absence).
    Specified,
}

/// One component of a DescribeClientQuotas filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterComponent {
    /// `user`, `client-id` (or `ip`).
    pub entity_type: String,
    /// What it matches.
    pub match_type: MatchType,
}

fn invalid(message: impl Into<String>) -> QuotaRefusal {
    (ResponseError::InvalidRequest, message.into())
}

impl ClientQuotas {
    /// The entities with quotas that `components` match. `strict`: an
    /// entity must have no part the filter does not name.
    pub fn describe(&self, components: &[FilterComponent], strict: bool) -> Result<DescribedQuotas, QuotaRefusal> {
        let (mut user, mut client, mut ip) = (None, None, false);
        for component in components {
            match component.entity_type.as_str() {
                USER if user.is_some() => return Err(invalid("Duplicate user filter component entity type")),
                USER => user = Some(&component.match_type),
                CLIENT_ID if client.is_some() => return Err(invalid("Duplicate client filter component entity type")),
                CLIENT_ID => client = Some(&component.match_type),
                "ip" if ip => return Err(invalid("Duplicate ip filter component entity type")),
                "ip" => ip = true,
                "" => return Err(invalid("Unexpected empty filter component entity type")),
                other => {
                    return Err((
                        ResponseError::UnsupportedVersion,
                        format!("Custom entity type '{other}' not supported"),
                    ))
                }
            }
        }
        if ip && (user.is_some() || client.is_some()) {
            return Err(invalid(
                "Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.",
            ));
        }
        if ip {
            // No IP quotas are kept.
            return Ok(Vec::new());
        }
        let matches = |component: Option<&MatchType>, name: &Option<EntityName>| match (component, name) {
            (Some(MatchType::Exact(n)), Some(EntityName::Named(m))) => n == m,
            (Some(MatchType::Default), Some(EntityName::Default)) => true,
            (Some(MatchType::Specified), Some(_)) => true,
            (Some(_), _) => false,
            (None, name) => name.is_none() || !strict,
        };
        let entries = self.recorded()?;
        Ok(entries
            .into_iter()
            .filter(|(entity, values)| {
                !values.is_empty() && matches(user, &entity.user) && matches(client, &entity.client_id)
            })
            .collect())
    }

    /// Every recorded entity's quotas: from the store when there is one
    /// (another broker may have just changed them), else as applied here.
    fn recorded(&self) -> Result<DescribedQuotas, QuotaRefusal> {
        match self.store.get() {
            Some(store) => Ok(store
                .all()
                .map_err(|e| (ResponseError::UnknownServerError, e))?
                .into_iter()
                .filter_map(|(path, config)| Some((QuotaEntity::from_path(&path)?, numeric(&config))))
                .collect()),
            None => Ok(self.configs.read().clone().into_iter().collect()),
        }
    }

    /// Changes one entity's quotas: `entity` as the request names it
    /// (type, name; a null name is the default), `ops` as (key, value;
    /// `None` removes). `validate_only`: checked, not applied.
    pub fn alter(
        &self,
        entity: &[(String, Option<String>)],
        ops: &[(String, Option<f64>)],
        validate_only: bool,
    ) -> Result<(), QuotaRefusal> {
        let entity = parse_entity(entity)?;
        let path = entity.path().ok_or_else(|| invalid("Invalid client quota entity"))?;
        let mut config = match self.store.get() {
            Some(store) => store
                .config(&path)
                .map_err(|e| (ResponseError::UnknownServerError, e))?,
            None => self
                .configs
                .read()
                .get(&entity)
                .map(|values| values.iter().map(|(k, v)| (k.clone(), format!("{v:?}"))).collect())
                .unwrap_or_default(),
        };
        for (key, value) in ops {
            let Some(value) = value else {
                config.remove(key);
                continue;
            };
            let Some((_, whole)) = QUOTA_KEYS.iter().find(|(k, _)| k == key) else {
                return Err(invalid(format!("Invalid configuration key {key}")));
            };
            let text = if *whole {
                let epsilon = 1e-6;
                let rounded = (value + epsilon).trunc();
                if (rounded - value).abs() > epsilon || !rounded.is_finite() {
                    return Err(invalid(format!("Configuration {key} must be a LONG value")));
                }
                format!("{}", rounded as i64)
            } else {
                // Java's Double.toString for ordinary values: 200.0, 1.5.
                format!("{value:?}")
            };
            config.insert(key.clone(), text);
        }
        if validate_only {
            return Ok(());
        }
        if let Some(store) = self.store.get() {
            store
                .set(&path, &config)
                .map_err(|e| (ResponseError::UnknownServerError, e))?;
        }
        self.apply(entity, &config);
        Ok(())
    }
}

/// An alteration's entity, checked as Kafka checks it.
fn parse_entity(entries: &[(String, Option<String>)]) -> Result<QuotaEntity, QuotaRefusal> {
    if entries.is_empty() {
        return Err(invalid("Invalid empty client quota entity"));
    }
    let (mut user, mut client_id, mut ip) = (None, None, false);
    for (entity_type, name) in entries {
        let parsed = EntityName::from_wire(name.as_deref());
        match entity_type.as_str() {
            USER => user = Some(parsed),
            CLIENT_ID => client_id = Some(parsed),
            "ip" => ip = true,
            other => return Err(invalid(format!("Unhandled client quota entity type: {other}"))),
        }
        if name.as_deref() == Some("") {
            return Err(invalid(format!("Empty {entity_type} not supported")));
        }
    }
    match (user.is_some() || client_id.is_some(), ip) {
        (true, true) => Err(invalid(
            "Invalid quota entity combination, IP entity should not be used with user/client ID entity.",
        )),
        (false, true) => Err(invalid(
            "IP quotas (connection_creation_rate) are not supported by gregor",
        )),
        _ => Ok(QuotaEntity { user, client_id }),
    }
}
