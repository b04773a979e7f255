use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_log::ManualClock;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::*;

fn quotas() -> (ClientQuotas, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(0));
    (ClientQuotas::new(QuotaWindow::default(), clock.clone()), clock)
}

fn ent(t: &str, n: Option<&str>) -> (String, Option<String>) {
    (t.to_string(), n.map(str::to_string))
}

fn set(q: &ClientQuotas, entity: &[(String, Option<String>)], key: &str, value: f64) {
    q.alter(entity, &[(key.to_string(), Some(value))], false).unwrap();
}

#[test]
fn lookup_follows_kafkas_precedence() {
    let (q, _) = quotas();
    let k = "producer_byte_rate";
    set(&q, &[ent("client-id", None)], k, 8.0);
    assert_eq!(
        q.quota(QuotaType::Produce, "u", "c"),
        Some((8.0, ("".into(), "c".into())))
    );
    set(&q, &[ent("client-id", Some("c"))], k, 7.0);
    assert_eq!(q.quota(QuotaType::Produce, "u", "c").unwrap().0, 7.0);
    set(&q, &[ent("user", None)], k, 6.0);
    assert_eq!(
        q.quota(QuotaType::Produce, "u", "c"),
        Some((6.0, ("u".into(), "".into())))
    );
    set(&q, &[ent("user", None), ent("client-id", None)], k, 5.0);
    assert_eq!(q.quota(QuotaType::Produce, "u", "c").unwrap().0, 5.0);
    set(&q, &[ent("user", None), ent("client-id", Some("c"))], k, 4.0);
    assert_eq!(q.quota(QuotaType::Produce, "u", "c").unwrap().0, 4.0);
    set(&q, &[ent("user", Some("u"))], k, 3.0);
    assert_eq!(
        q.quota(QuotaType::Produce, "u", "c"),
        Some((3.0, ("u".into(), "".into())))
    );
    set(&q, &[ent("user", Some("u")), ent("client-id", None)], k, 2.0);
    assert_eq!(q.quota(QuotaType::Produce, "u", "c").unwrap().0, 2.0);
    set(&q, &[ent("user", Some("u")), ent("client-id", Some("c"))], k, 1.0);
    assert_eq!(
        q.quota(QuotaType::Produce, "u", "c"),
        Some((1.0, ("u".into(), "c".into())))
    );
    // Another kind is not limited by these.
    assert_eq!(q.quota(QuotaType::Fetch, "u", "c"), None);
    // Removing the most specific falls back to the next.
    q.alter(
        &[ent("user", Some("u")), ent("client-id", Some("c"))],
        &[(k.into(), None)],
        false,
    )
    .unwrap();
    assert_eq!(q.quota(QuotaType::Produce, "u", "c").unwrap().0, 2.0);
}

#[test]
fn a_client_over_its_quota_is_throttled_and_others_are_not() {
    let (q, clock) = quotas();
    set(&q, &[ent("client-id", Some("slow"))], "producer_byte_rate", 1000.0);
    assert_eq!(q.record(QuotaType::Produce, "ANONYMOUS", "slow", 5_000.0), 0);
    clock.advance(10);
    // 25 000 bytes over 10.01 s (the 10 s minimum plus 10 ms):
    // (rate - 1000) / 1000 × 10 010 ms = 25 000 - 10 010.
    assert_eq!(q.record(QuotaType::Produce, "ANONYMOUS", "slow", 20_000.0), 14_990);
    assert_eq!(q.record(QuotaType::Produce, "ANONYMOUS", "fast", 1e9), 0);
    // A request-time throttle is bounded by one window (1 s).
    set(&q, &[ent("client-id", Some("slow"))], "request_percentage", 1.0);
    assert_eq!(q.record(QuotaType::Request, "ANONYMOUS", "slow", 1000.0), 1000);
    let labels = vec![("quota".to_string(), "produce".to_string())];
    assert_eq!(q.throttle_counters().0.get_or_create(&labels).get(), 1);
    assert_eq!(q.throttle_counters().1.get_or_create(&labels).get(), 14_990);
    // A fetch may ask for 10 windows of its quota at most.
    set(&q, &[ent("client-id", Some("slow"))], "consumer_byte_rate", 100.0);
    assert_eq!(
        q.max_value_in_window(QuotaType::Fetch, "ANONYMOUS", "slow"),
        Some(1000.0)
    );
    assert_eq!(q.max_value_in_window(QuotaType::Fetch, "ANONYMOUS", "fast"), None);
}

#[test]
fn a_default_user_quota_is_kept_per_user_and_a_named_user_shares_one_rate() {
    let (q, _) = quotas();
    let k = "producer_byte_rate";
    // <default> user: every user has its own rate of that size.
    set(&q, &[ent("user", None)], k, 1000.0);
    // (Rates are reckoned over at least 10 s: 5 000 bytes are 500 B/s.)
    assert_eq!(q.record(QuotaType::Produce, "alice", "a1", 5_000.0), 0);
    assert!(q.record(QuotaType::Produce, "alice", "a1", 10_000.0) > 0);
    assert_eq!(q.record(QuotaType::Produce, "bob", "b1", 1.0), 0);
    // A named user's quota is shared by all its client ids; another user
    // (and the anonymous one) still has the default's separate rate.
    set(&q, &[ent("user", Some("carol"))], k, 1000.0);
    assert_eq!(q.record(QuotaType::Produce, "carol", "c1", 5_000.0), 0);
    assert!(q.record(QuotaType::Produce, "carol", "c2", 10_000.0) > 0);
    assert_eq!(q.record(QuotaType::Produce, "ANONYMOUS", "c1", 1.0), 0);
}

#[test]
fn alter_checks_like_kafka() {
    let (q, _) = quotas();
    let bad = |entity: &[(String, Option<String>)], key: &str, value: f64| {
        q.alter(entity, &[(key.to_string(), Some(value))], false).unwrap_err()
    };
    let c = [ent("client-id", Some("c"))];
    assert_eq!(
        bad(&c, "producer_byte_rat", 1.0),
        (
            ResponseError::InvalidRequest,
            "Invalid configuration key producer_byte_rat".into()
        )
    );
    assert_eq!(
        bad(&c, "producer_byte_rate", 1.5).1,
        "Configuration producer_byte_rate must be a LONG value"
    );
    assert_eq!(
        bad(&[], "producer_byte_rate", 1.0).1,
        "Invalid empty client quota entity"
    );
    assert_eq!(
        bad(&[ent("group", Some("g"))], "producer_byte_rate", 1.0).1,
        "Unhandled client quota entity type: group"
    );
    assert_eq!(
        bad(&[ent("user", Some(""))], "producer_byte_rate", 1.0).1,
        "Empty user not supported"
    );
    // validate_only changes nothing.
    q.alter(&c, &[("request_percentage".into(), Some(50.0))], true).unwrap();
    assert_eq!(q.quota(QuotaType::Request, "u", "c"), None);
}

#[derive(Default)]
struct MemoryStore(Mutex<BTreeMap<String, BTreeMap<String, String>>>);

impl QuotaStore for MemoryStore {
    fn all(&self) -> Result<StoredConfigs, String> {
        Ok(self.0.lock().clone().into_iter().collect())
    }
    fn config(&self, path: &str) -> Result<BTreeMap<String, String>, String> {
        Ok(self.0.lock().get(path).cloned().unwrap_or_default())
    }
    fn set(&self, path: &str, config: &BTreeMap<String, String>) -> Result<(), String> {
        let mut all = self.0.lock();
        if config.is_empty() {
            all.remove(path);
        } else {
            all.insert(path.to_string(), config.clone());
        }
        Ok(())
    }
}

#[test]
fn alterations_are_stored_with_kafkas_names_and_values() {
    let (q, _) = quotas();
    let store = Arc::new(MemoryStore::default());
    q.attach_store(store.clone()).unwrap();
    q.alter(
        &[ent("user", Some("CN=a b")), ent("client-id", None)],
        &[
            ("producer_byte_rate".into(), Some(1024.0)),
            ("request_percentage".into(), Some(200.0)),
        ],
        false,
    )
    .unwrap();
    let stored = store.config("users/CN%3Da%20b/clients/<default>").unwrap();
    assert_eq!(stored["producer_byte_rate"], "1024");
    assert_eq!(stored["request_percentage"], "200.0");
    // A broker that learns of it from the store.
    let (other, _) = quotas();
    other.attach_store(store).unwrap();
    assert_eq!(other.quota(QuotaType::Produce, "CN=a b", "x").unwrap().0, 1024.0);
}

fn component(t: &str, m: MatchType) -> FilterComponent {
    FilterComponent {
        entity_type: t.into(),
        match_type: m,
    }
}

#[test]
fn describe_filters_strictly_or_not() {
    let (q, _) = quotas();
    set(&q, &[ent("client-id", Some("c"))], "producer_byte_rate", 1.0);
    set(&q, &[ent("client-id", None)], "producer_byte_rate", 2.0);
    set(&q, &[ent("user", Some("u"))], "consumer_byte_rate", 3.0);
    set(
        &q,
        &[ent("user", Some("u")), ent("client-id", Some("c"))],
        "producer_byte_rate",
        4.0,
    );
    let count = |components: &[FilterComponent], strict| q.describe(components, strict).unwrap().len();
    assert_eq!(count(&[], false), 4);
    assert_eq!(count(&[], true), 0);
    let exact_c = component("client-id", MatchType::Exact("c".into()));
    assert_eq!(count(std::slice::from_ref(&exact_c), false), 2);
    assert_eq!(count(std::slice::from_ref(&exact_c), true), 1);
    assert_eq!(count(&[component("client-id", MatchType::Default)], true), 1);
    assert_eq!(count(&[component("client-id", MatchType::Specified)], true), 2);
    assert_eq!(count(&[component("user", MatchType::Specified)], false), 2);
    assert_eq!(
        q.describe(&[exact_c.clone(), exact_c], false).unwrap_err(),
        (
            ResponseError::InvalidRequest,
            "Duplicate client filter component entity type".into()
        )
    );
    assert_eq!(
        q.describe(&[component("group", MatchType::Specified)], false)
            .unwrap_err()
            .0,
        ResponseError::UnsupportedVersion
    );
}
