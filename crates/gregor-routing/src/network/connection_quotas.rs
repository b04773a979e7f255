//! Connection limits, as Kafka's `ConnectionQuotas`: `max.connections`
//! (broker-wide), `listener.name.<l>.max.connections` (per listener),
//! `max.connections.per.ip` with `max.connections.per.ip.overrides`.
//!
//! An acceptor over the broker-wide or its listener's limit waits for a
//! connection to close before it takes the next one (Kafka blocks its
//! acceptor the same way; the kernel's backlog holds the rest). The
//! inter-broker listener is exempt from `max.connections` when there are
//! other listeners, so brokers still reach each other when clients use up
//! the broker's connections. A connection over its address' limit is
//! accepted and closed at once. Every admitted connection holds a
//! [`ConnectionSlot`] that gives its counts back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// The limits, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// `max.connections`: connections of the whole broker at most.
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections from one address at most.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`: other limits for some addresses.
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        // Kafka's defaults: Integer.MAX_VALUE.
        Self {
            max_connections: i32::MAX as usize,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: HashMap::new(),
        }
    }
}

/// What one listener's connections count against.
#[derive(Debug, Clone)]
pub(crate) struct ListenerQuota {
    /// The listener's name.
    pub(crate) name: String,
    /// `listener.name.<l>.max.connections`, if set.
    pub(crate) max_connections: Option<usize>,
    /// Exempt from `max.connections` (the inter-broker listener, when the
    /// broker has other listeners too).
    pub(crate) protected: bool,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// Its address has `max` connections already.
    #[error("too many connections from {address} (max.connections.per.ip: {max})")]
    TooManyFromAddress {
        /// The client's address.
        address: IpAddr,
        /// Its limit.
        max: usize,
    },
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_listener: HashMap<String, usize>,
    per_address: HashMap<IpAddr, usize>,
}

/// The broker's connection counts, shared by its acceptors and processors.
#[derive(Clone)]
pub(crate) struct ConnectionQuotas {
    limits: Arc<ConnectionLimits>,
    counts: Arc<Mutex<Counts>>,
    freed: Arc<Notify>,
}

impl ConnectionQuotas {
    /// No connections yet, under `limits`.
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits: Arc::new(limits),
            counts: Arc::new(Mutex::new(Counts::default())),
            freed: Arc::new(Notify::new()),
        }
    }

    /// Whether `listener` may take one more connection now (Kafka's
    /// `connectionSlotAvailable`).
    fn slot_available(&self, counts: &Counts, listener: &ListenerQuota) -> bool {
        let on_listener = counts.per_listener.get(&listener.name).copied().unwrap_or(0);
        if on_listener >= listener.max_connections.unwrap_or(usize::MAX) {
            false
        } else {
            listener.protected || counts.total < self.limits.max_connections
        }
    }

    /// Counts a connection from `address` on `listener` if the broker-wide
    /// and listener limits allow it now: `None` when they do not (wait
    /// with [`ConnectionQuotas::freed`] and try again), else the slot, or
    /// why the address may not have another connection.
    pub(crate) fn try_admit(
        &self,
        listener: &ListenerQuota,
        address: IpAddr,
    ) -> Option<Result<ConnectionSlot, Refused>> {
        let mut counts = self.counts.lock();
        if !self.slot_available(&counts, listener) {
            return None;
        }
        let from_address = counts.per_address.get(&address).copied().unwrap_or(0);
        let max = self
            .limits
            .max_connections_per_ip_overrides
            .get(&address)
            .copied()
            .unwrap_or(self.limits.max_connections_per_ip);
        if from_address >= max {
            return Some(Err(Refused::TooManyFromAddress { address, max }));
        }
        counts.total += 1;
        *counts.per_listener.entry(listener.name.clone()).or_default() += 1;
        *counts.per_address.entry(address).or_default() += 1;
        Some(Ok(ConnectionSlot {
            quotas: self.clone(),
            listener: listener.name.clone(),
            address,
        }))
    }

    /// Counts a connection as [`ConnectionQuotas::try_admit`] does, waiting
    /// (without blocking the thread) while the broker or the listener is
    /// full.
    pub(crate) async fn admit(&self, listener: &ListenerQuota, address: IpAddr) -> Result<ConnectionSlot, Refused> {
        loop {
            // Registered before checking, so a slot freed in between wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(admitted) = self.try_admit(listener, address) {
                return admitted;
            }
            freed.await;
        }
    }

    /// Connections open now: the broker's, `listener`'s, `address`'s.
    #[cfg(test)]
    pub(crate) fn count(&self, listener: &str, address: IpAddr) -> (usize, usize, usize) {
        let counts = self.counts.lock();
        (
            counts.total,
            counts.per_listener.get(listener).copied().unwrap_or(0),
            counts.per_address.get(&address).copied().unwrap_or(0),
        )
    }

    fn release(&self, listener: &str, address: IpAddr) {
        {
            let mut counts = self.counts.lock();
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.per_listener.get_mut(listener) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = counts.per_address.get_mut(&address) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_address.remove(&address);
                }
            }
        }
        self.freed.notify_waiters();
    }
}

/// One admitted connection's place in the counts, given back when dropped.
pub(crate) struct ConnectionSlot {
    quotas: ConnectionQuotas,
    listener: String,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.quotas.release(&self.listener, self.address);
    }
}

/// `max.connections.per.ip.overrides`: `host:count` pairs, comma-separated
/// (a host name is resolved once, as Kafka does at startup).
pub fn parse_per_ip_overrides(text: &str) -> Result<HashMap<IpAddr, usize>, String> {
    let mut out = HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("{entry:?} is not host:count"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("{entry:?}: {count:?} is not a count"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let address = match host.parse::<IpAddr>() {
            Ok(a) => a,
            Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip())
                .ok_or_else(|| format!("{entry:?}: {host:?} does not resolve"))?,
        };
        out.insert(address, count);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn listener(name: &str, max: Option<usize>, protected: bool) -> ListenerQuota {
        ListenerQuota {
            name: name.into(),
            max_connections: max,
            protected,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_address_limit_with_an_override() {
        let quotas = ConnectionQuotas::new(ConnectionLimits {
            max_connections_per_ip: 2,
            max_connections_per_ip_overrides: parse_per_ip_overrides("127.0.0.2:3, 127.0.0.3:0").unwrap(),
            ..ConnectionLimits::default()
        });
        let l = listener("PLAINTEXT", None, false);
        let a: Vec<_> = (0..2)
            .map(|_| quotas.try_admit(&l, ip("127.0.0.1")).unwrap().unwrap())
            .collect();
        assert!(matches!(
            quotas.try_admit(&l, ip("127.0.0.1")),
            Some(Err(Refused::TooManyFromAddress { max: 2, .. }))
        ));
        let b: Vec<_> = (0..3)
            .map(|_| quotas.try_admit(&l, ip("127.0.0.2")).unwrap().unwrap())
            .collect();
        assert!(matches!(quotas.try_admit(&l, ip("127.0.0.2")), Some(Err(_))));
        assert!(matches!(quotas.try_admit(&l, ip("127.0.0.3")), Some(Err(_))));
        // A refused connection is not counted.
        assert_eq!(quotas.count("PLAINTEXT", ip("127.0.0.1")), (5, 5, 2));
        drop(a);
        assert_eq!(quotas.count("PLAINTEXT", ip("127.0.0.1")), (3, 3, 0));
        assert!(quotas.try_admit(&l, ip("127.0.0.1")).unwrap().is_ok());
        drop(b);
    }

    #[test]
    fn broker_and_listener_limits_and_the_protected_listener() {
        let quotas = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 3,
            ..ConnectionLimits::default()
        });
        let clients = listener("CLIENT", None, false);
        let small = listener("SMALL", Some(1), false);
        let internal = listener("INTERNAL", Some(2), true);
        let _s = quotas.try_admit(&small, ip("10.0.0.1")).unwrap().unwrap();
        assert!(quotas.try_admit(&small, ip("10.0.0.2")).is_none(), "listener limit");
        let c: Vec<_> = (0..2)
            .map(|_| quotas.try_admit(&clients, ip("10.0.0.1")).unwrap().unwrap())
            .collect();
        assert!(quotas.try_admit(&clients, ip("10.0.0.9")).is_none(), "broker limit");
        // The inter-broker listener goes over max.connections, up to its own limit.
        let i: Vec<_> = (0..2)
            .map(|_| quotas.try_admit(&internal, ip("10.0.0.5")).unwrap().unwrap())
            .collect();
        assert!(quotas.try_admit(&internal, ip("10.0.0.5")).is_none());
        assert_eq!(quotas.count("CLIENT", ip("10.0.0.1")).0, 5);
        drop(i);
        assert!(
            quotas.try_admit(&clients, ip("10.0.0.9")).is_none(),
            "still 3 client connections"
        );
        drop(c);
        assert!(quotas.try_admit(&clients, ip("10.0.0.9")).is_some());
    }

    #[tokio::test]
    async fn a_full_broker_holds_the_acceptor_until_a_connection_closes() {
        let quotas = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 1,
            ..ConnectionLimits::default()
        });
        let l = listener("PLAINTEXT", None, false);
        let first = quotas.admit(&l, ip("127.0.0.1")).await.unwrap();
        let second = quotas.admit(&l, ip("127.0.0.1"));
        tokio::pin!(second);
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut second)
            .await
            .is_err());
        drop(first);
        let admitted = tokio::time::timeout(Duration::from_secs(10), second).await.unwrap();
        assert!(admitted.is_ok());
    }

    #[test]
    fn overrides_are_host_count_pairs() {
        let o = parse_per_ip_overrides("127.0.0.2:5,[::1]:7,localhost:9").unwrap();
        assert_eq!(o[&ip("127.0.0.2")], 5);
        assert_eq!(o[&ip("::1")], 7);
        assert!(o.len() >= 2);
        assert!(parse_per_ip_overrides("127.0.0.2").is_err());
        assert!(parse_per_ip_overrides("127.0.0.2:x").is_err());
        assert!(parse_per_ip_overrides("").unwrap().is_empty());
    }
}
