//! Client quotas, as Kafka's `ClientQuotaManager`: the quota configs of
//! users and client ids (kept in coordination, see [`QuotaStore`]), the
//! rates clients use them at, and the throttle time of a client over its
//! quota.
//!
//! A client is known by its user (`ANONYMOUS` without authentication) and
//! client id. Its quota of a kind (produce bytes, fetch bytes, request
//! time) is the first config that sets it, in Kafka's order: user+client,
//! user+default client, user, default user+client, default user+default
//! client, default user, client, default client. The entity found also
//! says whose traffic shares the rate: a user quota is shared by all that
//! user's clients, a default client quota is kept per client id.

mod admin;
pub mod entity;
pub mod rate;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use gregor_log::Clock;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub use admin::{DescribedQuotas, FilterComponent, MatchType, QuotaRefusal};
pub use entity::{EntityName, QuotaEntity};
pub use rate::{QuotaWindow, SampledRate};
pub use store::{CoordinatedQuotaStore, QuotaStore, StoredConfigs};

/// The kinds of quota enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaType {
    /// `producer_byte_rate`: produce request bytes per second.
    Produce,
    /// `consumer_byte_rate`: fetch response bytes per second.
    Fetch,
    /// `request_percentage`: handler thread time, in percent of one
    /// thread, per second.
    Request,
}

impl QuotaType {
    /// The config key of this kind.
    pub fn key(self) -> &'static str {
        match self {
            Self::Produce => "producer_byte_rate",
            Self::Fetch => "consumer_byte_rate",
            Self::Request => "request_percentage",
        }
    }

    /// The kind's name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Fetch => "fetch",
            Self::Request => "request",
        }
    }

    /// Every kind.
    pub const ALL: [QuotaType; 3] = [Self::Produce, Self::Fetch, Self::Request];
}

/// The config keys a quota entity accepts, and whether each is a whole
/// number (Kafka's LONG) or not (DOUBLE). `controller_mutation_rate` is
/// kept and described but not enforced.
pub const QUOTA_KEYS: [(&str, bool); 4] = [
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];

/// Idle rates are forgotten after this long (Kafka's inactive sensor
/// expiry).
const SENSOR_EXPIRY_MS: i64 = 3_600_000;

struct Sensor {
    rate: SampledRate,
    last_used_ms: i64,
}

/// Counters of throttling by quota kind (`quota="produce"`), for metrics.
pub type ThrottleCounters = Family<Vec<(String, String)>, Counter>;

/// The quotas of this broker's clients: configs, rates, throttle times.
pub struct ClientQuotas {
    window: QuotaWindow,
    clock: Arc<dyn Clock>,
    configs: RwLock<BTreeMap<QuotaEntity, BTreeMap<String, f64>>>,
    sensors: Mutex<SensorTable>,
    store: OnceLock<Arc<dyn QuotaStore>>,
    throttled: ThrottleCounters,
    throttle_ms: ThrottleCounters,
}

#[derive(Default)]
struct SensorTable {
    by_key: HashMap<(QuotaType, String, String), Sensor>,
    swept_ms: i64,
}

impl ClientQuotas {
    /// No quotas yet, rates sampled by `window`, times from `clock`.
    pub fn new(window: QuotaWindow, clock: Arc<dyn Clock>) -> Self {
        Self {
            window,
            clock,
            configs: RwLock::default(),
            sensors: Mutex::default(),
            store: OnceLock::new(),
            throttled: Family::default(),
            throttle_ms: Family::default(),
        }
    }

    /// Where quota configs are kept (coordination); loads every config
    /// recorded there. Blocks: call it off the runtime.
    pub fn attach_store(&self, store: Arc<dyn QuotaStore>) -> Result<(), String> {
        let all = store.all()?;
        let _ = self.store.set(store);
        let mut configs = self.configs.write();
        configs.clear();
        for (path, config) in all {
            if let Some(entity) = QuotaEntity::from_path(&path) {
                configs.insert(entity, numeric(&config));
            }
        }
        Ok(())
    }

    /// Re-reads one entity's config (a change notification named it).
    pub fn reload(&self, entity_path: &str) -> Result<(), String> {
        let (Some(store), Some(entity)) = (self.store.get(), QuotaEntity::from_path(entity_path)) else {
            return Ok(());
        };
        let config = store.config(entity_path)?;
        self.apply(entity, &config);
        Ok(())
    }

    fn apply(&self, entity: QuotaEntity, config: &BTreeMap<String, String>) {
        let values = numeric(config);
        let mut configs = self.configs.write();
        if values.is_empty() {
            configs.remove(&entity);
        } else {
            configs.insert(entity, values);
        }
    }

    /// The quota of `kind` for `user`'s `client_id`, and the tags of the
    /// rate it is checked against (user, client id; empty when shared).
    pub fn quota(&self, kind: QuotaType, user: &str, client_id: &str) -> Option<(f64, (String, String))> {
        let configs = self.configs.read();
        if configs.is_empty() {
            return None;
        }
        let u = || Some(EntityName::Named(user.to_string()));
        let c = || Some(EntityName::Named(client_id.to_string()));
        let d = || Some(EntityName::Default);
        // (user part, client part, whether the rate is kept per user, per client id).
        let order = [
            (u(), c(), true, true),
            (u(), d(), true, true),
            (u(), None, true, false),
            (d(), c(), true, true),
            (d(), d(), true, true),
            (d(), None, true, false),
            (None, c(), false, true),
            (None, d(), false, true),
        ];
        let found = order.into_iter().find_map(|(u, c, by_user, by_client)| {
            let bound = *configs.get(&QuotaEntity { user: u, client_id: c })?.get(kind.key())?;
            let tag = |keep: bool, name: &str| if keep { name.to_string() } else { String::new() };
            Some((bound, (tag(by_user, user), tag(by_client, client_id))))
        });
        found
    }

    /// Records `value` (bytes, or percent of a thread's second) for
    /// `user`'s `client_id` now; the throttle time (ms) when the client is
    /// over its quota, else 0. Nothing is recorded for a client without a
    /// quota.
    pub fn record(&self, kind: QuotaType, user: &str, client_id: &str, value: f64) -> i32 {
        let Some((bound, (user_tag, client_tag))) = self.quota(kind, user, client_id) else {
            return 0;
        };
        let now = self.clock.now_ms();
        let mut table = self.sensors.lock();
        if now - table.swept_ms > 60_000 {
            table.by_key.retain(|_, s| now - s.last_used_ms < SENSOR_EXPIRY_MS);
            table.swept_ms = now;
        }
        let sensor = table.by_key.entry((kind, user_tag, client_tag)).or_insert(Sensor {
            rate: SampledRate::default(),
            last_used_ms: now,
        });
        sensor.last_used_ms = now;
        let mut throttle = sensor.rate.record_and_throttle(self.window, value, bound, now);
        if kind == QuotaType::Request {
            // Kafka bounds a request-time throttle by one sample window.
            throttle = throttle.min(self.window.window_ms);
        }
        let throttle = i32::try_from(throttle).unwrap_or(i32::MAX);
        drop(table);
        if throttle > 0 {
            let labels = vec![("quota".to_string(), kind.label().to_string())];
            self.throttled.get_or_create(&labels).inc();
            self.throttle_ms.get_or_create(&labels).inc_by(throttle as u64);
            tracing::debug!(?kind, user, client_id, throttle, "quota violated");
        }
        throttle
    }

    /// Takes back `value` recorded for a response that was not sent after
    /// all (a throttled fetch is answered empty, as Kafka does).
    pub fn unrecord(&self, kind: QuotaType, user: &str, client_id: &str, value: f64) {
        let Some((_, (user_tag, client_tag))) = self.quota(kind, user, client_id) else {
            return;
        };
        let now = self.clock.now_ms();
        if let Some(sensor) = self.sensors.lock().by_key.get_mut(&(kind, user_tag, client_tag)) {
            sensor.rate.record(self.window, -value, now);
        }
    }

    /// The counters of throttled responses and of their throttle times
    /// (ms), by quota kind, for the metrics registry.
    pub fn throttle_counters(&self) -> (ThrottleCounters, ThrottleCounters) {
        (self.throttled.clone(), self.throttle_ms.clone())
    }

    /// The most that can be recorded in one go without a certain
    /// throttle: the quota over `samples - 1` windows (Kafka caps a
    /// consumer's fetch size by it). `None` without a quota.
    pub fn max_value_in_window(&self, kind: QuotaType, user: &str, client_id: &str) -> Option<f64> {
        let (bound, _) = self.quota(kind, user, client_id)?;
        let windows = self.window.samples.saturating_sub(1).max(1) as f64;
        Some(bound * windows * self.window.window_ms as f64 / 1000.0)
    }
}

/// The quota keys of a config with their values as numbers (unparseable
/// values and other keys dropped).
fn numeric(config: &BTreeMap<String, String>) -> BTreeMap<String, f64> {
    config
        .iter()
        .filter(|(k, _)| QUOTA_KEYS.iter().any(|(key, _)| key == k))
        .filter_map(|(k, v)| Some((k.clone(), v.trim().parse::<f64>().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests;
