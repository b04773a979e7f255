//! Kafka's listener configuration: `listeners` (`NAME://host:port,…`),
//! `listener.security.protocol.map`, `advertised.listeners` per listener
//! and the inter-broker listener (`inter.broker.listener.name`, or
//! `security.inter.broker.protocol`), checked as Kafka's `KafkaConfig`
//! checks them.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use gregor_auth::SecurityProtocol;
use tokio::net::{TcpListener, TcpSocket};

use crate::config::ServerConfig;

/// One listener: a name, its security protocol and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The listener's name, upper case (`PLAINTEXT`, `INTERNAL`, …).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// Host (empty: every interface when binding).
    pub host: String,
    /// Port (0: any free port when binding).
    pub port: u16,
}

impl ListenerSpec {
    /// `host:port` to bind (an empty host binds every interface).
    pub fn address(&self) -> String {
        let host = if self.host.is_empty() { "0.0.0.0" } else { &self.host };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Listens on the listener's address with `backlog` pending
    /// connections (`socket.listen.backlog.size`), as Kafka's acceptor
    /// binds its server socket: `SO_REUSEADDR` set, the first address the
    /// host resolves to.
    pub async fn bind(&self, backlog: u32) -> std::io::Result<TcpListener> {
        let address = self.address();
        let resolved = tokio::net::lookup_host(&address).await?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{address} resolves to no address"),
            )
        })?;
        let socket = if resolved.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(resolved)?;
        socket.listen(backlog)
    }
}

/// Every listener of a broker, what it advertises, and the listener
/// brokers talk to each other through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerPlan {
    /// Where to listen, in the order configured.
    pub listeners: Vec<ListenerSpec>,
    /// What clients (and other brokers) are told, per listener.
    pub advertised: Vec<ListenerSpec>,
    /// The inter-broker listener's name.
    pub inter_broker: String,
}

impl ListenerPlan {
    /// The plan a configuration describes, or why it is wrong.
    pub fn of(config: &ServerConfig) -> anyhow::Result<Self> {
        let map = protocol_map(config.listener_security_protocol_map.as_deref())?;
        let listeners = parse_listeners(&config.listeners, &map).context("listeners")?;
        let advertised = match &config.advertised_listeners {
            Some(a) if !a.trim().is_empty() => {
                let advertised = parse_listeners(a, &map).context("advertised.listeners")?;
                for a in &advertised {
                    if !listeners.iter().any(|l| l.name == a.name) {
                        bail!(
                            "advertised.listeners names {}, which listeners does not (advertised listener names \
                             must be equal to or a subset of the ones in listeners)",
                            a.name
                        );
                    }
                }
                advertised
            }
            _ => listeners.clone(),
        };
        let inter_broker = match (
            &config.inter_broker_listener_name,
            &config.security_inter_broker_protocol,
        ) {
            (Some(_), Some(_)) => {
                bail!("only one of inter.broker.listener.name and security.inter.broker.protocol may be set")
            }
            (Some(name), None) => name.trim().to_ascii_uppercase(),
            (None, Some(protocol)) => protocol
                .parse::<SecurityProtocol>()
                .map_err(anyhow::Error::msg)
                .context("security.inter.broker.protocol")?
                .name()
                .to_string(),
            (None, None) => SecurityProtocol::Plaintext.name().to_string(),
        };
        if !advertised.iter().any(|l| l.name == inter_broker) {
            bail!(
                "the inter-broker listener {inter_broker} is not among the advertised listeners ({}); \
                 set inter.broker.listener.name to one of them",
                advertised
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(Self {
            listeners,
            advertised,
            inter_broker,
        })
    }

    /// The inter-broker listener's advertised endpoint.
    pub fn inter_broker_endpoint(&self) -> &ListenerSpec {
        self.advertised
            .iter()
            .find(|l| l.name == self.inter_broker)
            .unwrap_or(&self.advertised[0])
    }
}

/// `listener.security.protocol.map`: Kafka's default names each protocol by
/// itself.
fn protocol_map(text: Option<&str>) -> anyhow::Result<BTreeMap<String, SecurityProtocol>> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok([
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect());
    };
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .with_context(|| format!("listener.security.protocol.map: {entry:?} is not NAME:PROTOCOL"))?;
        let protocol = protocol
            .trim()
            .parse::<SecurityProtocol>()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("listener.security.protocol.map: {entry:?}"))?;
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// `NAME://host:port,…` with distinct names, each in the protocol map.
fn parse_listeners(text: &str, map: &BTreeMap<String, SecurityProtocol>) -> anyhow::Result<Vec<ListenerSpec>> {
    let mut out: Vec<ListenerSpec> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = entry
            .split_once("://")
            .with_context(|| format!("{entry:?} is not NAME://host:port"))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            bail!("{entry:?}: a listener name is letters, digits, '_' and '-'");
        }
        let protocol = *map.get(&name).with_context(|| {
            format!("no security protocol defined for listener {name} (add it to listener.security.protocol.map)")
        })?;
        let (host, port) = address
            .rsplit_once(':')
            .with_context(|| format!("{entry:?} has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = port
            .parse::<u16>()
            .with_context(|| format!("{entry:?}: {port:?} is not a port"))?;
        if out.iter().any(|l| l.name == name) {
            bail!("each listener must have a different name: {name} appears twice");
        }
        out.push(ListenerSpec {
            name,
            protocol,
            host,
            port,
        });
    }
    if out.is_empty() {
        bail!("no listener in {text:?}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pairs: &[(&str, &str)]) -> anyhow::Result<ListenerPlan> {
        let overrides: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        ServerConfig::load(None, &overrides).and_then(|c| ListenerPlan::of(&c))
    }

    #[test]
    fn named_listeners_with_their_protocols_and_advertised_endpoints() {
        let p = plan(&[
            (
                "listeners",
                "INTERNAL://127.0.0.1:9093,EXTERNAL://0.0.0.0:9094,SSL://:0",
            ),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,SSL:SSL",
            ),
            (
                "advertised.listeners",
                "INTERNAL://b1:9093,EXTERNAL://kafka.example:19094",
            ),
            ("inter.broker.listener.name", "internal"),
        ])
        .unwrap();
        assert_eq!(p.listeners.len(), 3);
        assert_eq!(p.listeners[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(p.listeners[2].address(), "0.0.0.0:0");
        assert_eq!(p.advertised.len(), 2);
        assert_eq!(p.inter_broker, "INTERNAL");
        assert_eq!(p.inter_broker_endpoint().host, "b1");
    }

    #[test]
    fn kafka_refuses_these_and_so_do_we() {
        // No PLAINTEXT listener for the default inter-broker protocol.
        assert!(plan(&[("listeners", "SSL://x:1")]).is_err());
        // A name without a protocol.
        assert!(plan(&[("listeners", "PLAINTEXT://x:1,INTERNAL://x:2")]).is_err());
        // Twice the same name.
        assert!(plan(&[("listeners", "PLAINTEXT://x:1,PLAINTEXT://x:2")]).is_err());
        // Advertising a listener not listened on.
        assert!(plan(&[("listeners", "PLAINTEXT://x:1"), ("advertised.listeners", "SSL://x:2")]).is_err());
        // Both ways of naming the inter-broker listener.
        assert!(plan(&[
            ("listeners", "PLAINTEXT://x:1"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("security.inter.broker.protocol", "PLAINTEXT"),
        ])
        .is_err());
        // security.inter.broker.protocol names the listener of that name.
        let p = plan(&[
            ("listeners", "PLAINTEXT://x:1,SSL://x:2"),
            ("security.inter.broker.protocol", "SSL"),
        ])
        .unwrap();
        assert_eq!(p.inter_broker, "SSL");
    }
}
