use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde::Deserialize;

use super::value::java_double;
use super::*;

// The tests of the configuration before it became a table.

#[test]
fn defaults_are_kafkas() {
    let c = LogConfig::default();
    assert_eq!(c.segment_bytes, 1_073_741_824);
    assert_eq!(c.index_interval_bytes, 4096);
    assert_eq!(c.retention_ms, 604_800_000);
    assert_eq!(c.flush_policy(), FlushPolicy::None);
    c.validate().unwrap();
}

#[test]
fn flush_policy_follows_the_settings() {
    let c = LogConfig {
        flush_messages: 10,
        ..Default::default()
    };
    assert_eq!(c.flush_policy(), FlushPolicy::EveryMessages(10));
    let c = LogConfig {
        flush_ms: 50,
        ..Default::default()
    };
    assert_eq!(c.flush_policy(), FlushPolicy::Interval(Duration::from_millis(50)));
    let c = LogConfig {
        flush_group_commit: true,
        flush_ms: 5,
        ..Default::default()
    };
    assert_eq!(c.flush_policy(), FlushPolicy::GroupCommit);
}

#[test]
fn cleanup_policy_uses_kafkas_names() {
    let c: CleanupPolicy = serde_json_like("compact,delete");
    assert_eq!(c, CleanupPolicy::CompactDelete);
    assert!(c.compacts() && c.deletes());
}

fn serde_json_like(name: &str) -> CleanupPolicy {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<serde::de::value::Error> = name.into_deserializer();
    CleanupPolicy::deserialize(de).unwrap()
}

#[test]
fn out_of_range_values_are_refused() {
    let c = LogConfig {
        segment_bytes: u32::MAX,
        ..Default::default()
    };
    assert!(c.validate().is_err());
}

// The table.

/// Kafka 3.9's `LogConfig.configNames()`.
const KAFKA_3_9_TOPIC_CONFIGS: [&str; 36] = [
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_table_is_kafkas_list_in_order() {
    let names: Vec<&str> = TOPIC_PROPERTIES.iter().map(|p| p.name).collect();
    assert_eq!(names, KAFKA_3_9_TOPIC_CONFIGS);
    for p in TOPIC_PROPERTIES {
        assert_eq!(topic_property(p.name).map(|q| q.name), Some(p.name));
        assert!(!p.sensitive && !p.doc.is_empty(), "{}", p.name);
    }
    assert!(topic_property("log.retention.ms").is_none());
}

#[test]
fn every_default_parses_and_is_the_default_config() {
    let defaults = LogConfig::default();
    for p in TOPIC_PROPERTIES {
        assert_eq!(p.value_of(&defaults), p.default, "{}", p.name);
        let mut c = LogConfig::default();
        c.set(p.name, p.default).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(c, defaults, "{}", p.name);
    }
}

#[test]
fn describe_shows_every_property_in_kafkas_text() {
    let shown = LogConfig::default().describe();
    assert_eq!(shown.len(), TOPIC_PROPERTIES.len());
    let value = |name: &str| shown.iter().find(|e| e.name == name).unwrap().value.clone();
    assert_eq!(value("cleanup.policy"), "delete");
    assert_eq!(value("compression.type"), "producer");
    assert_eq!(value("min.cleanable.dirty.ratio"), "0.5");
    assert_eq!(value("leader.replication.throttled.replicas"), "");
    assert_eq!(value("flush.ms"), i64::MAX.to_string());
    let entry = shown.iter().find(|e| e.name == "segment.bytes").unwrap();
    assert_eq!((entry.config_type, entry.config_type.id()), (ConfigType::Int, 3));
    assert!(!entry.read_only && !entry.sensitive);

    let mut c = LogConfig::default();
    c.set("cleanup.policy", " delete , compact ").unwrap();
    c.set("leader.replication.throttled.replicas", "0:1, 1:2").unwrap();
    c.set("min.cleanable.dirty.ratio", "1").unwrap();
    let shown = c.describe();
    let value = |name: &str| shown.iter().find(|e| e.name == name).unwrap().value.clone();
    assert_eq!(value("cleanup.policy"), "compact,delete");
    assert_eq!(value("leader.replication.throttled.replicas"), "0:1,1:2");
    assert_eq!(value("min.cleanable.dirty.ratio"), "1.0");
}

#[test]
fn properties_gregor_does_not_act_on_are_kept() {
    let c = LogConfig::with_overrides(
        &LogConfig::default(),
        &overrides(&[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "-5"),
            ("preallocate", "TRUE"),
            ("message.format.version", "2.8"),
            ("message.timestamp.before.max.ms", "3600000"),
            ("follower.replication.throttled.replicas", "*"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(c.compression_type, TopicCompression::Zstd);
    assert_eq!(c.compression_type.codec(), Some(crate::compression::Compression::Zstd));
    assert_eq!(c.compression_zstd_level, -5);
    assert!(c.preallocate);
    assert_eq!(c.message_format_version, "2.8");
    assert_eq!(c.message_timestamp_before_max_ms, 3_600_000);
    assert_eq!(c.follower_replication_throttled_replicas, vec!["*"]);
    assert_eq!(c.min_insync_replicas(), 2);
    assert!(c.unclean_leader_election_enable);
    let zstd = c.describe().into_iter().find(|e| e.name == "compression.type").unwrap();
    assert_eq!(zstd.value, "zstd");
    for p in TOPIC_PROPERTIES {
        let acts = [
            "cleanup.policy",
            "delete.retention.ms",
            "flush.messages",
            "flush.ms",
            "index.interval.bytes",
            "max.compaction.lag.ms",
            "max.message.bytes",
            "message.timestamp.type",
            "min.cleanable.dirty.ratio",
            "min.compaction.lag.ms",
            "retention.bytes",
            "retention.ms",
            "segment.bytes",
            "segment.index.bytes",
            "segment.ms",
        ]
        .contains(&p.name);
        let replication = ["min.insync.replicas", "unclean.leader.election.enable"].contains(&p.name);
        let expected = if acts {
            Effect::Log
        } else if replication {
            Effect::Replication
        } else {
            Effect::Kept
        };
        assert_eq!(p.effect, expected, "{}", p.name);
    }
}

#[test]
fn bad_values_are_refused_with_kafkas_message() {
    let cases = [
        ("segment.bytes", "13", "Value must be at least 14"),
        ("segment.bytes", "3000000000", "Not a number of type INT"),
        ("segment.bytes", "big", "Not a number of type INT"),
        ("segment.ms", "0", "Value must be at least 1"),
        ("retention.ms", "-2", "Value must be at least -1"),
        ("retention.ms", "soon", "Not a number of type LONG"),
        ("min.insync.replicas", "0", "Value must be at least 1"),
        ("min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"),
        ("min.cleanable.dirty.ratio", "NaN", "Value must be at least 0"),
        ("min.cleanable.dirty.ratio", "half", "Not a number of type DOUBLE"),
        ("cleanup.policy", "remove", "String must be one of: compact, delete"),
        ("cleanup.policy", "Delete", "String must be one of: compact, delete"),
        ("cleanup.policy", "", "gregor needs at least one of compact, delete"),
        (
            "compression.type",
            "brotli",
            "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
        ),
        (
            "compression.gzip.level",
            "0",
            "Value must be between 1 and 9 or equal to -1",
        ),
        ("compression.lz4.level", "18", "Value must be no more than 17"),
        ("compression.zstd.level", "23", "Value must be no more than 22"),
        (
            "message.timestamp.type",
            "createtime",
            "String must be one of: CreateTime, LogAppendTime",
        ),
        ("message.format.version", "4.0", "Version 4.0 is not a valid version"),
        ("message.format.version", "3.10", "Version 3.10 is not a valid version"),
        ("preallocate", "yes", "Expected value to be either true or false"),
        ("local.retention.ms", "-3", "Value must be at least -2"),
        (
            "leader.replication.throttled.replicas",
            "0-1",
            "leader.replication.throttled.replicas must be the literal '*' or a list of replicas",
        ),
        (
            "follower.replication.throttled.replicas",
            "*,0:1",
            "must be the literal '*'",
        ),
        (
            "segment.index.bytes",
            "20",
            "gregor's index files need at least 24 bytes",
        ),
        ("max.message.bytes", "60", "Value must be at least 61"),
    ];
    for (name, value, reason) in cases {
        let mut c = LogConfig::default();
        let err = c.set(name, value).unwrap_err();
        assert_eq!(err.name(), name);
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("Invalid value {value} for configuration {name}: ")),
            "{message}"
        );
        assert!(message.contains(reason), "{message}");
        assert_eq!(c, LogConfig::default(), "{name}={value} changed the config");
    }
}

#[test]
fn unknown_names_are_refused_with_the_name() {
    let err = LogConfig::default().set("retention.hours", "1").unwrap_err();
    assert_eq!(err, ConfigError::UnknownName("retention.hours".into()));
    assert_eq!(err.to_string(), "Unknown topic config name: retention.hours");
    let err = LogConfig::with_overrides(&LogConfig::default(), &overrides(&[("colour", "red")])).unwrap_err();
    assert_eq!(err.name(), "colour");
}

#[test]
fn values_are_parsed_as_kafka_parses_them() {
    let c = LogConfig::with_overrides(
        &LogConfig::default(),
        &overrides(&[
            ("retention.ms", " 1000 "),
            ("segment.bytes", "+2048"),
            ("min.cleanable.dirty.ratio", "1e-4"),
            ("message.format.version", "0.10.2.1"),
            ("compression.gzip.level", "-1"),
            ("remote.log.copy.disable", "False"),
            ("leader.replication.throttled.replicas", ""),
        ]),
    )
    .unwrap();
    assert_eq!((c.retention_ms, c.segment_bytes), (1000, 2048));
    assert_eq!(c.min_cleanable_dirty_ratio, 1e-4);
    assert_eq!(
        topic_property("min.cleanable.dirty.ratio").unwrap().value_of(&c),
        "1.0E-4"
    );
    for version in [
        "2.8",
        "3.0-IV1",
        "3.9",
        "3.6.1",
        "4.0-IV1",
        "0.8.2",
        "0.10.0-IV1",
        "1.1",
    ] {
        LogConfig::default().set("message.format.version", version).unwrap();
    }
}

#[test]
fn doubles_print_as_java_prints_them() {
    for (x, text) in [
        (0.5, "0.5"),
        (1.0, "1.0"),
        (0.0, "0.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (0.000123, "1.23E-4"),
        (1e7, "1.0E7"),
        (12_345.5, "12345.5"),
        (f64::INFINITY, "Infinity"),
    ] {
        assert_eq!(java_double(x), text);
    }
}

#[test]
fn rules_across_properties_hold_whatever_the_order() {
    let bad = LogConfig::with_overrides(
        &LogConfig::default(),
        &overrides(&[("min.compaction.lag.ms", "100"), ("max.compaction.lag.ms", "50")]),
    )
    .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (50)"
    );
    // Valid together even though a default in between would conflict.
    let defaults = LogConfig {
        min_compaction_lag_ms: 100,
        ..LogConfig::default()
    };
    let c = LogConfig::with_overrides(
        &defaults,
        &overrides(&[("max.compaction.lag.ms", "50"), ("min.compaction.lag.ms", "10")]),
    )
    .unwrap();
    assert_eq!((c.min_compaction_lag_ms, c.max_compaction_lag_ms), (10, 50));
    // `set` checks the whole configuration and leaves it alone on error.
    let mut c = c;
    assert!(c.set("min.compaction.lag.ms", "60").is_err());
    assert_eq!(c.min_compaction_lag_ms, 10);
}

#[test]
fn tiered_storage_rules_are_kafkas() {
    let with = |pairs: &[(&str, &str)]| LogConfig::with_overrides(&LogConfig::default(), &overrides(pairs));
    with(&[("remote.storage.enable", "true")]).unwrap();
    let compacted = with(&[("remote.storage.enable", "true"), ("cleanup.policy", "compact")]).unwrap_err();
    assert_eq!(compacted.name(), "remote.storage.enable");
    let longer = with(&[
        ("remote.storage.enable", "true"),
        ("retention.ms", "1000"),
        ("local.retention.ms", "2000"),
    ])
    .unwrap_err();
    assert_eq!(
        longer.to_string(),
        "Invalid value 2000 for configuration local.retention.ms: \
         Value must not be more than retention.ms property value: 1000"
    );
    let copy_disabled = with(&[
        ("remote.storage.enable", "true"),
        ("remote.log.copy.disable", "true"),
        ("local.retention.bytes", "10"),
    ])
    .unwrap_err();
    assert_eq!(copy_disabled.name(), "local.retention.bytes");
    // Without tiered storage the local limits are only kept.
    with(&[("local.retention.ms", "2000"), ("retention.ms", "1000")]).unwrap();
}

#[test]
fn validate_checks_values_set_in_code() {
    let c = LogConfig {
        min_insync_replicas: 0,
        ..LogConfig::default()
    };
    assert!(c.validate().unwrap_err().to_string().contains("min.insync.replicas"));
    let c = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        remote_storage_enable: true,
        ..LogConfig::default()
    };
    assert!(c.validate().is_err());
}

/// Valid text for a property, from its type and rule.
fn valid_text(p: &TopicProperty) -> BoxedStrategy<String> {
    let number = |range: std::ops::RangeInclusive<i64>| range.prop_map(|n| n.to_string()).boxed();
    let int_max = i64::from(i32::MAX);
    match (p.config_type, p.validator) {
        (ConfigType::Boolean, _) => prop::sample::select(vec!["true", "false", "TRUE", " False "])
            .prop_map(String::from)
            .boxed(),
        (ConfigType::Double, Validator::Between(min, max)) => {
            (min as f64..=max as f64).prop_map(|x| x.to_string()).boxed()
        }
        (ConfigType::Int, Validator::AtLeast(min)) => number(min..=int_max),
        (ConfigType::Long, Validator::AtLeast(min)) => number(min..=i64::MAX),
        (ConfigType::Long, Validator::Any) => number(i64::MIN..=i64::MAX),
        (_, Validator::Between(min, max)) => number(min..=max),
        (_, Validator::BetweenOr(min, max, or)) => prop_oneof![Just(or.to_string()), number(min..=max)].boxed(),
        (_, Validator::OneOf(choices)) => prop::sample::select(choices).prop_map(String::from).boxed(),
        (_, Validator::ListOf(choices)) => prop::sample::subsequence(choices, 1..=choices.len())
            .prop_map(|items| items.join(", "))
            .boxed(),
        (_, Validator::ThrottledReplicas) => prop_oneof![
            Just("*".to_string()),
            prop::collection::vec((0u32..64, 0u32..8), 0..4).prop_map(|pairs| pairs
                .iter()
                .map(|(p, b)| format!("{p}:{b}"))
                .collect::<Vec<_>>()
                .join(",")),
        ]
        .boxed(),
        (_, Validator::KafkaVersion) => prop::sample::select(vec!["2.8", "3.0-IV1", "0.10.2", "3.9", "3.6.1"])
            .prop_map(String::from)
            .boxed(),
        (ty, rule) => panic!("no strategy for {} ({ty}, {rule:?})", p.name),
    }
}

proptest! {
    #[test]
    fn with_overrides_of_the_description_reproduces_the_config(
        texts in TOPIC_PROPERTIES.iter().map(|p| prop::option::of(valid_text(p))).collect::<Vec<_>>()
    ) {
        let mut config = LogConfig::default();
        for (p, text) in TOPIC_PROPERTIES.iter().zip(texts) {
            if let Some(text) = text {
                let _ = config.set(p.name, &text); // refused only across properties
            }
        }
        let shown: BTreeMap<String, String> =
            config.describe().into_iter().map(|e| (e.name.to_string(), e.value)).collect();
        prop_assert_eq!(LogConfig::with_overrides(&LogConfig::default(), &shown).unwrap(), config);
    }
}
