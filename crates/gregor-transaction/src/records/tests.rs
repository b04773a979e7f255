use super::*;
use proptest::prelude::*;

fn sample() -> TransactionLogValue {
    TransactionLogValue {
        producer_id: 1000,
        producer_epoch: 3,
        timeout_ms: 60_000,
        status: 2,
        partitions: Some(vec![("a".into(), vec![0, 1]), ("b".into(), vec![7])]),
        last_update_ms: 1_700_000_000_500,
        start_ms: 1_700_000_000_000,
        previous_producer_id: -1,
        next_producer_id: -1,
        client_transaction_version: 0,
    }
}

/// `v` with its tagged fields at their defaults.
fn without_tags(v: &TransactionLogValue) -> TransactionLogValue {
    TransactionLogValue {
        previous_producer_id: -1,
        next_producer_id: -1,
        client_transaction_version: 0,
        ..v.clone()
    }
}

#[test]
fn bytes_are_kafkas() {
    // TransactionLogKey v0 of "tx": version 0, length 2, "tx".
    assert_eq!(key_bytes("tx"), vec![0, 0, 0, 2, b't', b'x']);
    let mut expected = vec![0, 0]; // version 0
    expected.extend_from_slice(&1000i64.to_be_bytes());
    expected.extend_from_slice(&3i16.to_be_bytes());
    expected.extend_from_slice(&60_000i32.to_be_bytes());
    expected.push(2);
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(&[0, 1, b'a']);
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(&0i32.to_be_bytes());
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&[0, 1, b'b']);
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&7i32.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    assert_eq!(value_bytes(&sample()), expected);
    // Empty writes a null partition array.
    let empty = TransactionLogValue {
        status: 0,
        partitions: None,
        start_ms: -1,
        ..sample()
    };
    let bytes = value_bytes(&empty);
    assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes());
    assert_eq!(parse_value(&bytes), Ok(empty));
}

/// The v1 (flexible) encoding of `v`, with a tagged field in a topic
/// entry and one at the end, as a newer Kafka may write.
fn flexible(v: &TransactionLogValue) -> Vec<u8> {
    let mut out = vec![0, 1];
    out.extend_from_slice(&v.producer_id.to_be_bytes());
    out.extend_from_slice(&v.producer_epoch.to_be_bytes());
    out.extend_from_slice(&v.timeout_ms.to_be_bytes());
    out.push(v.status as u8);
    match &v.partitions {
        None => out.push(0),
        Some(topics) => {
            out.push(topics.len() as u8 + 1);
            for (topic, ids) in topics {
                out.push(topic.len() as u8 + 1);
                out.extend_from_slice(topic.as_bytes());
                out.push(ids.len() as u8 + 1);
                for id in ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
                out.extend_from_slice(&[1, 5, 2, 0xaa, 0xbb]); // one tagged field
            }
        }
    }
    out.extend_from_slice(&v.last_update_ms.to_be_bytes());
    out.extend_from_slice(&v.start_ms.to_be_bytes());
    out.extend_from_slice(&[1, 9, 1, 0xcc]); // an unknown tag
    out
}

#[test]
fn transaction_version_2_values_are_kafkas() {
    let tv2 = TransactionLogValue {
        client_transaction_version: 2,
        ..sample()
    };
    let bytes = value_bytes(&tv2);
    // Kafka's v1 value with only ClientTransactionVersion = 2 set.
    let mut expected = vec![0, 1];
    expected.extend_from_slice(&1000i64.to_be_bytes());
    expected.extend_from_slice(&3i16.to_be_bytes());
    expected.extend_from_slice(&60_000i32.to_be_bytes());
    expected.push(2);
    expected.extend_from_slice(&[3, 2, b'a', 3]);
    expected.extend_from_slice(&0i32.to_be_bytes());
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&[0, 2, b'b', 2]);
    expected.extend_from_slice(&7i32.to_be_bytes());
    expected.push(0);
    expected.extend_from_slice(&1_700_000_000_500i64.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    expected.extend_from_slice(&[1, 2, 2, 0, 2]); // one tag: 2, size 2, 2
    assert_eq!(bytes, expected);
    assert_eq!(parse_value(&bytes), Ok(tv2.clone()));
    // Tags 0 and 1 when set, in tag order; an Empty value's null array.
    let rotating = TransactionLogValue {
        status: 0,
        partitions: None,
        previous_producer_id: 5,
        next_producer_id: 6,
        ..tv2
    };
    let bytes = value_bytes(&rotating);
    assert_eq!(bytes[17], 0, "null compact array");
    let mut trailer = vec![3, 0, 8];
    trailer.extend_from_slice(&5i64.to_be_bytes());
    trailer.extend_from_slice(&[1, 8]);
    trailer.extend_from_slice(&6i64.to_be_bytes());
    trailer.extend_from_slice(&[2, 2, 0, 2]);
    assert!(bytes.ends_with(&trailer));
    assert_eq!(parse_value(&bytes), Ok(rotating));
    // Version 0 keeps no tags.
    let tv0 = TransactionLogValue {
        previous_producer_id: 5,
        ..sample()
    };
    assert_eq!(parse_value(&value_bytes(&tv0)), Ok(sample()));
}

#[test]
fn known_tags_of_the_wrong_size_are_errors() {
    let mut bytes = flexible(&sample());
    let at = bytes.len() - 4;
    bytes.truncate(at);
    bytes.extend_from_slice(&[1, 2, 1, 2]); // tag 2 with one byte
    assert_eq!(parse_value(&bytes), Err(RecordError::Truncated));
}

#[test]
fn reads_flexible_values_skipping_tagged_fields() {
    assert_eq!(parse_value(&flexible(&sample())), Ok(sample()));
    let empty = TransactionLogValue {
        partitions: None,
        ..sample()
    };
    assert_eq!(parse_value(&flexible(&empty)), Ok(empty));
}

#[test]
fn unknown_versions() {
    assert_eq!(parse_key(&[0, 1, 0, 0]), Ok(None));
    assert_eq!(
        parse_value(&[0, 2]),
        Err(RecordError::UnknownVersion {
            what: "value",
            version: 2
        })
    );
    assert_eq!(parse_key(&[0, 0, 0, 3, b'a']), Err(RecordError::Truncated));
    assert_eq!(parse_key(&[0, 0, 0xff, 0xff]), Err(RecordError::InvalidLength));
}

#[test]
fn partitions_group_by_topic() {
    assert_eq!(
        group_partitions([("b", 2), ("a", 1), ("b", 0), ("b", 2)]),
        vec![("a".to_string(), vec![1]), ("b".to_string(), vec![0, 2])]
    );
}

#[test]
fn ids_land_where_kafka_puts_them() {
    assert_eq!(partition_for("my-group", 50), 12);
}

fn any_value() -> impl Strategy<Value = TransactionLogValue> {
    (
        any::<i64>(),
        any::<i16>(),
        any::<i32>(),
        0i8..8,
        proptest::option::of(proptest::collection::vec(
            ("[a-z._-]{1,20}", proptest::collection::vec(0i32..10_000, 0..5)),
            0..4,
        )),
        any::<i64>(),
        any::<i64>(),
        (0i16..3, any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |(producer_id, producer_epoch, timeout_ms, status, partitions, last_update_ms, start_ms, tags)| {
                let (client_transaction_version, previous_producer_id, next_producer_id) = tags;
                let v = TransactionLogValue {
                    producer_id,
                    producer_epoch,
                    timeout_ms,
                    status,
                    partitions,
                    last_update_ms,
                    start_ms,
                    previous_producer_id,
                    next_producer_id,
                    client_transaction_version,
                };
                // Version 0 values store no tags.
                if client_transaction_version == 0 {
                    without_tags(&v)
                } else {
                    v
                }
            },
        )
}

proptest! {
    #[test]
    fn keys_round_trip(id in ".{0,40}") {
        prop_assert_eq!(parse_key(&key_bytes(&id)), Ok(Some(id)));
    }

    #[test]
    fn values_round_trip(v in any_value()) {
        prop_assert_eq!(parse_value(&value_bytes(&v)), Ok(v.clone()));
        prop_assert_eq!(parse_value(&flexible(&v)), Ok(without_tags(&v)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = parse_key(&bytes);
        let _ = parse_value(&bytes);
    }

    #[test]
    fn truncated_values_are_errors(v in any_value(), cut in 0usize..200) {
        let bytes = value_bytes(&v);
        let cut = cut % bytes.len();
        prop_assert!(parse_value(&bytes[..cut]).is_err());
    }
}

#[test]
fn a_topic_too_long_for_v0_is_written_whole_at_v1() {
    // Kafka's topic names are at most 249 bytes; a longer one (any v1
    // value may carry it) must not be cut, possibly inside a character.
    let long = TransactionLogValue {
        partitions: Some(vec![("é".repeat(20_000), vec![0])]),
        previous_producer_id: 5,
        ..sample()
    };
    assert_eq!(value_version(&long), 1);
    assert_eq!(parse_value(&value_bytes(&long)), Ok(long));
    assert_eq!(value_version(&sample()), 0, "what Kafka writes is unchanged");
}
