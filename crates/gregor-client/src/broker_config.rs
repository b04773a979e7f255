//! Broker configs: described (DescribeConfigs with synonyms) and the
//! dynamic ones changed (IncrementalAlterConfigs) — a broker's own on that
//! broker, the cluster-wide defaults (the empty resource name) on any.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientError, Cluster, Connection};

const BROKER_RESOURCE: i8 = 4;

/// Where a config's value comes from (Kafka's `ConfigSource`, by its name:
/// `DYNAMIC_BROKER_CONFIG`, `DYNAMIC_DEFAULT_BROKER_CONFIG`,
/// `STATIC_BROKER_CONFIG`, `DEFAULT_CONFIG`, …).
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One broker config as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfigEntry {
    /// Kafka's name (`log.retention.ms`).
    pub name: String,
    /// The value in force (`None`: null or sensitive).
    pub value: Option<String>,
    /// Where it comes from ([`config_source_name`]).
    pub source: &'static str,
    /// Whether it cannot change while the broker runs.
    pub read_only: bool,
    /// Its synonyms, most specific first: (source, name, value).
    pub synonyms: Vec<(&'static str, String, Option<String>)>,
}

/// Describes and alters broker configs of a cluster.
pub struct BrokerConfigs {
    cluster: Cluster,
}

impl BrokerConfigs {
    /// Through the brokers of `bootstrap` (`host:port,…`).
    pub fn new(bootstrap: &str) -> Self {
        Self {
            cluster: Cluster::new(bootstrap, "gregor-admin"),
        }
    }

    /// The broker a BROKER resource is sent to: `Some(id)` that broker
    /// (only it answers for its own configs), `None` any.
    async fn connection(&mut self, broker: Option<i32>) -> Result<&mut Connection, ClientError> {
        self.cluster.refresh(&[]).await?;
        let id = match broker {
            Some(id) => id,
            None => self
                .cluster
                .any_broker()
                .ok_or_else(|| ClientError::Protocol("no broker in the cluster's metadata".into()))?,
        };
        self.cluster.connection(id).await
    }

    /// Every config of broker `broker` (`Some(id)`), or the cluster-wide
    /// dynamic defaults (`None`), with synonyms.
    pub async fn describe(&mut self, broker: Option<i32>) -> Result<Vec<BrokerConfigEntry>, ClientError> {
        let mut resource = DescribeConfigsResource::default();
        resource.resource_type = BROKER_RESOURCE;
        resource.resource_name = resource_name(broker);
        resource.configuration_keys = None;
        let mut request = DescribeConfigsRequest::default();
        request.resources = vec![resource];
        request.include_synonyms = true;
        let response = self.connection(broker).await?.send(request, 1).await?;
        let mut entries = Vec::new();
        for result in response.results {
            check(result.error_code, result.error_message.as_ref())?;
            for c in result.configs {
                entries.push(BrokerConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source: config_source_name(c.config_source),
                    read_only: c.read_only,
                    synonyms: c
                        .synonyms
                        .into_iter()
                        .map(|s| {
                            (
                                config_source_name(s.source),
                                s.name.to_string(),
                                s.value.map(|v| v.to_string()),
                            )
                        })
                        .collect(),
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Sets (`Some`) or deletes (`None`) dynamic configs of broker
    /// `broker` (`Some(id)`) or of the cluster-wide defaults (`None`).
    pub async fn alter(
        &mut self,
        broker: Option<i32>,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ClientError> {
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = BROKER_RESOURCE;
        resource.resource_name = resource_name(broker);
        resource.configs = changes
            .iter()
            .map(|(name, value)| {
                let mut c = AlterableConfig::default();
                c.name = StrBytes::from_string(name.clone());
                c.config_operation = if value.is_some() { 0 } else { 1 };
                c.value = value.clone().map(StrBytes::from_string);
                c
            })
            .collect();
        let mut request = IncrementalAlterConfigsRequest::default();
        request.resources = vec![resource];
        let response = self.connection(broker).await?.send(request, 1).await?;
        for r in &response.responses {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }
}

fn resource_name(broker: Option<i32>) -> StrBytes {
    StrBytes::from_string(broker.map(|id| id.to_string()).unwrap_or_default())
}

fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ClientError> {
    if code == 0 {
        return Ok(());
    }
    Err(ClientError::from_code(
        code,
        message.map(|m| m.to_string()).unwrap_or_default(),
    ))
}
