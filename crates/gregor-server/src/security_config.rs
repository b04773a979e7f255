//! Each listener's security from the configuration: TLS settings
//! (`ssl.*`, overridden per listener by `listener.name.<name>.ssl.*`, as
//! Kafka's listener prefix does) made into the network layer's
//! [`ListenerContext`].

use std::path::PathBuf;

use anyhow::Context;
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
        Ok(TlsSettings {
            keystore: get("ssl.keystore.location", self.ssl_keystore_location.as_deref()).map(PathBuf::from),
            key_password: get("ssl.key.password", self.ssl_key_password.as_deref()),
            truststore: get("ssl.truststore.location", self.ssl_truststore_location.as_deref()).map(PathBuf::from),
            client_auth: get("ssl.client.auth", Some(&self.ssl_client_auth))
                .unwrap_or_default()
                .parse::<ClientAuth>()?,
        })
    }
}

/// The network layer's view of listener `spec`: TLS acceptor and principal
/// mapping on TLS listeners.
pub(crate) fn listener_context(config: &ServerConfig, spec: &ListenerSpec) -> anyhow::Result<ListenerContext> {
    let mut context = ListenerContext::plaintext(&spec.name);
    context.protocol = spec.protocol;
    if spec.protocol.uses_tls() {
        let settings = config.tls_settings(&spec.name)?;
        let tls = gregor_auth::tls::server_config(&settings).with_context(|| format!("listener {}", spec.name))?;
        context.tls = Some(tokio_rustls::TlsAcceptor::from(tls));
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
