//! Each listener's security from the configuration: TLS settings
//! (`ssl.*`, overridden per listener by `listener.name.<name>.ssl.*`, as
//! Kafka's listener prefix does) made into the network layer's
//! [`ListenerContext`].

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use gregor_auth::sasl::{CredentialCache, JaasConfig, Mechanism, SaslServerConfig};
use gregor_auth::{ClientAuth, SslPrincipalMapper, TlsSettings};
use gregor_routing::ListenerContext;

use crate::config::ServerConfig;
use crate::listeners::ListenerSpec;

impl ServerConfig {
    /// `property` for listener `listener`: its `listener.name.<listener>.`
    /// override (the name in lower case, as Kafka writes it), else the
    /// broker-wide value.
    pub(crate) fn for_listener(&self, listener: &str, property: &str, general: Option<&str>) -> Option<String> {
        let prefixed = format!("listener.name.{}.{property}", listener.to_ascii_lowercase());
        self.listener_overrides
            .get(&prefixed)
            .cloned()
            .or_else(|| general.map(str::to_string))
    }

    /// Listener `listener`'s own `listener.name.<listener>.<property>`,
    /// parsed (`None` when it has none; an error naming the property when
    /// it does not parse).
    pub(crate) fn listener_override<T>(&self, listener: &str, property: &str) -> anyhow::Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.for_listener(listener, property, None)
            .map(|v| v.trim().parse::<T>())
            .transpose()
            .with_context(|| format!("listener.name.{}.{property}", listener.to_ascii_lowercase()))
    }

    /// The TLS settings of listener `listener`.
    pub(crate) fn tls_settings(&self, listener: &str) -> anyhow::Result<TlsSettings> {
        let get = |property: &str, general: Option<&str>| self.for_listener(listener, property, general);
        for (property, general) in [
            ("ssl.keystore.type", &self.ssl_keystore_type),
            ("ssl.truststore.type", &self.ssl_truststore_type),
        ] {
            let value = get(property, Some(general)).unwrap_or_default();
            if !value.eq_ignore_ascii_case("PEM") {
                anyhow::bail!("{property}={value}: gregor reads PEM files only (set {property}=PEM)");
            }
        }
        // An empty value is no value (as an unset GREGOR_SSL_KEY_PASSWORD).
        let text =
            |property: &str, general: &Option<String>| get(property, general.as_deref()).filter(|v| !v.is_empty());
        Ok(TlsSettings {
            keystore: get("ssl.keystore.location", self.ssl_keystore_location.as_deref()).map(PathBuf::from),
            keystore_certificate_chain: text("ssl.keystore.certificate.chain", &self.ssl_keystore_certificate_chain),
            keystore_key: text("ssl.keystore.key", &self.ssl_keystore_key),
            key_password: text("ssl.key.password", &self.ssl_key_password),
            truststore: get("ssl.truststore.location", self.ssl_truststore_location.as_deref()).map(PathBuf::from),
            truststore_certificates: text("ssl.truststore.certificates", &self.ssl_truststore_certificates),
            client_auth: get("ssl.client.auth", Some(&self.ssl_client_auth))
                .unwrap_or_default()
                .parse::<ClientAuth>()?,
        })
    }
}

/// The SASL settings of listener `listener`: its mechanisms, PLAIN's users
/// from the JAAS configuration (`listener.name.<l>.plain.sasl.jaas.config`,
/// else `sasl.jaas.config`), SCRAM credentials from `scram`.
fn sasl_config(config: &ServerConfig, listener: &str, scram: Arc<CredentialCache>) -> anyhow::Result<SaslServerConfig> {
    let names = config
        .for_listener(
            listener,
            "sasl.enabled.mechanisms",
            Some(&config.sasl_enabled_mechanisms),
        )
        .unwrap_or_default();
    let mut mechanisms = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let mechanism = Mechanism::from_name(&name.to_ascii_uppercase()).with_context(|| {
            format!(
                "listener {listener}: SASL mechanism {name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512);                  set sasl.enabled.mechanisms"
            )
        })?;
        mechanisms.push(mechanism);
    }
    if mechanisms.is_empty() {
        anyhow::bail!("listener {listener}: sasl.enabled.mechanisms is empty");
    }
    let mut plain_users = std::collections::HashMap::new();
    if mechanisms.contains(&Mechanism::Plain) {
        let jaas = config
            .for_listener(listener, "plain.sasl.jaas.config", config.sasl_jaas_config.as_deref())
            .with_context(|| {
                format!("listener {listener}: PLAIN needs its users in sasl.jaas.config (user_<name>=\"<password>\")")
            })?;
        plain_users = JaasConfig::parse(&jaas)
            .with_context(|| format!("listener {listener}"))?
            .plain_users();
    }
    Ok(SaslServerConfig {
        mechanisms,
        plain_users,
        scram,
    })
}

/// The network layer's view of listener `spec`: TLS acceptor and principal
/// mapping on TLS listeners, SASL settings on SASL listeners (SCRAM
/// credentials from `scram`).
pub(crate) fn listener_context(
    config: &ServerConfig,
    spec: &ListenerSpec,
    scram: Arc<CredentialCache>,
) -> anyhow::Result<ListenerContext> {
    let mut context = ListenerContext::plaintext(&spec.name);
    context.protocol = spec.protocol;
    context.failed_authentication_delay =
        std::time::Duration::from_millis(config.connection_failed_authentication_delay_ms);
    context.max_connections = config.listener_override(&spec.name, "max.connections")?;
    if spec.protocol.uses_sasl() {
        context.sasl = Some(Arc::new(sasl_config(config, &spec.name, scram)?));
        let reauth = config
            .listener_override(&spec.name, "connections.max.reauth.ms")?
            .unwrap_or(config.connections_max_reauth_ms);
        context.max_reauth = u64::try_from(reauth)
            .ok()
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis);
    }
    if spec.protocol.uses_tls() {
        let settings = config.tls_settings(&spec.name)?;
        let tls = gregor_auth::tls::ReloadingServerConfig::new(settings)
            .with_context(|| format!("listener {}", spec.name))?;
        context.tls = Some(Arc::new(tls));
        context.kernel_tls = config
            .listener_override(&spec.name, "ssl.kernel.tls.enable")?
            .unwrap_or(config.ssl_kernel_tls_enable);
        let rules = config
            .for_listener(
                &spec.name,
                "ssl.principal.mapping.rules",
                Some(&config.ssl_principal_mapping_rules),
            )
            .unwrap_or_default();
        context.principal_mapper = SslPrincipalMapper::parse(&rules).context("ssl.principal.mapping.rules")?;
    }
    Ok(context)
}

/// How this broker reaches the others (controller requests, replica
/// fetches, transaction markers): the inter-broker listener's protocol,
/// its truststore (and keystore, presented to a listener asking for client
/// certificates), and for SASL `sasl.mechanism.inter.broker.protocol` with
/// the `username`/`password` of that mechanism's JAAS configuration.
pub(crate) fn inter_broker_security(
    config: &ServerConfig,
    plan: &crate::listeners::ListenerPlan,
) -> anyhow::Result<gregor_client::ClientSecurity> {
    let endpoint = plan.inter_broker_endpoint();
    let listener = endpoint.name.as_str();
    let mut security = gregor_client::ClientSecurity::default();
    if endpoint.protocol.uses_tls() {
        let tls = config.tls_settings(listener)?;
        let context = || format!("inter-broker TLS on listener {listener}");
        let truststore = tls.truststore_source().with_context(context)?.with_context(|| {
            format!(
                "the inter-broker listener {listener} uses TLS: brokers need ssl.truststore.location \
                 (or ssl.truststore.certificates) to check each other"
            )
        })?;
        let identity = tls.client_identity().with_context(context)?;
        security.tls = Some(gregor_auth::tls::client_config(truststore, identity).with_context(context)?);
    }
    if endpoint.protocol.uses_sasl() {
        let name = config.sasl_mechanism_inter_broker_protocol.trim().to_ascii_uppercase();
        let mechanism = Mechanism::from_name(&name).with_context(|| {
            format!(
                "sasl.mechanism.inter.broker.protocol={name}: brokers authenticate to each other with PLAIN, \
                 SCRAM-SHA-256 or SCRAM-SHA-512"
            )
        })?;
        let property = format!("{}.sasl.jaas.config", name.to_ascii_lowercase());
        let jaas = config
            .for_listener(listener, &property, config.sasl_jaas_config.as_deref())
            .with_context(|| format!("the inter-broker listener {listener} needs {property} (username, password)"))?;
        let jaas = JaasConfig::parse(&jaas)?;
        let (Some(username), Some(password)) = (jaas.option("username"), jaas.option("password")) else {
            anyhow::bail!("the JAAS configuration of listener {listener} ({name}) needs username and password");
        };
        security.sasl = Some(gregor_client::SaslCredentials {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    Ok(security)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_may_have_a_connection_limit_of_its_own() {
        let pairs = [
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0".to_string(),
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT".to_string(),
            ),
            ("inter.broker.listener.name", "INTERNAL".to_string()),
            ("listener.name.plaintext.max.connections", "7".to_string()),
        ];
        let config = ServerConfig::load(None, &pairs).unwrap();
        let plan = crate::listeners::ListenerPlan::of(&config).unwrap();
        let scram = Arc::new(CredentialCache::new());
        let limits: Vec<_> = plan
            .listeners
            .iter()
            .map(|spec| listener_context(&config, spec, scram.clone()).unwrap().max_connections)
            .collect();
        assert_eq!(limits, [Some(7), None]);
        let bad = [("listener.name.plaintext.max.connections", "many".to_string())];
        let config = ServerConfig::load(None, &bad).unwrap();
        let plan = crate::listeners::ListenerPlan::of(&config).unwrap();
        assert!(listener_context(&config, &plan.listeners[0], scram).is_err());
    }
}
