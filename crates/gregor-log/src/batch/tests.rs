use super::header::MAGIC_AT;
use super::*;
use proptest::prelude::*;

fn sample() -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1000);
    b.append(Some(b"k1"), Some(b"v1"), &[(b"h", Some(b"x"))], 1000);
    b.append(None, None, &[], 1005);
    b.append(Some(b"k3"), Some(b""), &[(b"h2", None)], 1003);
    b.build()
}

#[test]
fn built_batch_validates_and_reads_back() {
    let batch = sample();
    let header = validate_batch(&batch).unwrap();
    assert_eq!(header.record_count, 3);
    assert_eq!(header.last_offset_delta, 2);
    assert_eq!(header.max_timestamp, 1005);
    assert_eq!(header.compression().unwrap(), Compression::None);
    let records: Vec<_> = Records::new(&batch, &header).map(Result::unwrap).collect();
    assert_eq!(records[0].key, Some(&b"k1"[..]));
    assert_eq!(records[0].headers, vec![(&b"h"[..], Some(&b"x"[..]))]);
    assert_eq!(records[1].key, None);
    assert_eq!(records[1].value, None);
    assert_eq!(records[1].timestamp_delta, 5);
    assert_eq!(records[2].value, Some(&b""[..]));
    assert_eq!(records[2].headers, vec![(&b"h2"[..], None)]);
}

#[test]
fn offset_and_epoch_rewrites_keep_the_crc_valid() {
    let mut batch = sample();
    set_base_offset(&mut batch, 42);
    set_partition_leader_epoch(&mut batch, 7);
    let header = validate_batch(&batch).unwrap();
    assert_eq!(header.base_offset, 42);
    assert_eq!(header.last_offset(), 44);
    assert_eq!(header.partition_leader_epoch, 7);
}

#[test]
fn log_append_time_rewrite_recomputes_the_crc() {
    let mut batch = sample();
    set_log_append_time(&mut batch, 99_999);
    let header = validate_batch(&batch).unwrap();
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 99_999);
}

#[test]
fn corruption_is_detected() {
    let mut batch = sample();
    let last = batch.len() - 1;
    batch[last] ^= 1;
    assert!(matches!(validate_batch(&batch), Err(BatchError::CrcMismatch { .. })));
    let mut batch = sample();
    batch[MAGIC_AT] = 1;
    assert_eq!(validate_batch(&batch), Err(BatchError::UnsupportedMagic(1)));
    let batch = sample();
    assert!(matches!(
        validate_batch(&batch[..batch.len() - 1]),
        Err(BatchError::Truncated { .. })
    ));
}

#[test]
fn rebuilt_batches_keep_offsets_and_validate() {
    let mut batch = sample();
    set_base_offset(&mut batch, 100);
    let header = validate_batch(&batch).unwrap();
    let records: Vec<_> = Records::new(&batch, &header).map(Result::unwrap).collect();
    let kept = vec![records[0].clone(), records[2].clone()];
    let rebuilt = rebuild_with_records(&batch, &header, &kept).unwrap();
    let h = validate_batch_integrity(&rebuilt).unwrap();
    assert_eq!((h.base_offset, h.last_offset(), h.record_count), (100, 102, 2));
    assert_eq!(h.max_timestamp, 1003);
    let again: Vec<_> = Records::new(&rebuilt, &h).map(Result::unwrap).collect();
    assert_eq!(again[1].offset_delta, 2);
    assert_eq!(again[1].key, Some(&b"k3"[..]));
    // Emptied, it keeps its offsets, producer fields and max timestamp.
    let empty = rebuild_with_records(&batch, &header, &[]).unwrap();
    let e = validate_batch_integrity(&empty).unwrap();
    assert_eq!((e.base_offset, e.last_offset(), e.record_count), (100, 102, 0));
    assert_eq!(
        (e.producer_id, e.producer_epoch, e.base_sequence, e.max_timestamp),
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.max_timestamp
        )
    );
}

/// (offset, timestamp, key, value) of every record of `bytes`.
type Seen = Vec<(u64, i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

fn records_of(bytes: &[u8]) -> Seen {
    let mut out = Vec::new();
    for_each_record(bytes, |_, offset, ts, r| {
        out.push((offset, ts, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec)));
    })
    .unwrap();
    out
}

#[test]
fn a_stamped_delete_horizon_is_the_base_timestamp_and_keeps_record_timestamps() {
    for codec in [Compression::None, Compression::Gzip] {
        let mut b = RecordBatchBuilder::new(1000).producer(7, 2, 40);
        b.append(Some(b"k1"), Some(b"v1"), &[(b"h", Some(b"x"))], 1000);
        b.append(Some(b"k2"), None, &[], 1005);
        b.append(Some(b"k3"), Some(b""), &[(b"h2", None)], 1003);
        let mut batch = b.build_compressed(codec).unwrap();
        set_base_offset(&mut batch, 100);
        let header = validate_batch(&batch).unwrap();
        assert_eq!(header.delete_horizon_ms(), None);
        let section = record_section(&batch, &header).unwrap();
        let records: Vec<_> = Records::from_section(&section, header.record_count)
            .map(Result::unwrap)
            .collect();
        let kept = vec![records[1].clone(), records[2].clone()];

        let stamped = rebuild_with_delete_horizon(&batch, &header, &kept, 3_600_000).unwrap();
        let h = validate_batch_integrity(&stamped).unwrap();
        assert_eq!(h.delete_horizon_ms(), Some(3_600_000));
        assert_eq!(h.base_timestamp, 3_600_000);
        assert_eq!(h.compression().unwrap(), codec);
        assert_eq!(h.max_timestamp, 1005);
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert_eq!(
            (
                h.base_offset,
                h.last_offset(),
                h.record_count,
                h.producer_id,
                h.base_sequence
            ),
            (100, 102, 2, 7, 40)
        );
        assert_eq!(records_of(&stamped), records_of(&batch)[1..]);
        let again = record_section(&stamped, &h).unwrap();
        let headers: Vec<_> = Records::from_section(&again, h.record_count)
            .map(|r| {
                r.unwrap()
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(headers, vec![vec![], vec![(b"h2".to_vec(), None)]]);

        // A later rebuild keeps the horizon and the timestamps.
        let again: Vec<_> = Records::from_section(&again, h.record_count)
            .map(Result::unwrap)
            .collect();
        let filtered = rebuild_with_records(&stamped, &h, &again[1..]).unwrap();
        let f = validate_batch_integrity(&filtered).unwrap();
        assert_eq!((f.delete_horizon_ms(), f.max_timestamp), (Some(3_600_000), 1003));
        assert_eq!(records_of(&filtered), records_of(&batch)[2..]);
    }
}

#[test]
fn a_delete_horizon_too_far_from_a_record_timestamp_is_refused() {
    let batch = sample();
    let header = validate_batch(&batch).unwrap();
    let records: Vec<_> = Records::new(&batch, &header).map(Result::unwrap).collect();
    assert!(matches!(
        rebuild_with_delete_horizon(&batch, &header, &records, i64::MIN),
        Err(BatchError::Invalid(_))
    ));
}

#[test]
fn batch_iter_stops_at_a_partial_batch() {
    let one = sample();
    let mut bytes = one.clone();
    bytes.extend_from_slice(&one);
    bytes.extend_from_slice(&one[..30]);
    let found: Vec<_> = BatchIter::new(&bytes).map(|r| r.unwrap().0).collect();
    assert_eq!(found, vec![0, one.len()]);
}

proptest! {
    #[test]
    fn builder_round_trips_arbitrary_records(
        records in proptest::collection::vec(
            (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
             -1000i64..1000),
            1..30)
    ) {
        let mut b = RecordBatchBuilder::new(10_000);
        for (k, v, dt) in &records {
            b.append(k.as_deref(), v.as_deref(), &[], 10_000 + dt);
        }
        let batch = b.build();
        let header = validate_batch(&batch).unwrap();
        prop_assert_eq!(header.record_count as usize, records.len());
        for (r, (k, v, dt)) in Records::new(&batch, &header).zip(&records) {
            let r = r.unwrap();
            prop_assert_eq!(r.key, k.as_deref());
            prop_assert_eq!(r.value, v.as_deref());
            prop_assert_eq!(r.timestamp_delta, *dt);
        }
    }

    #[test]
    fn validate_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = validate_batch(&bytes);
        for _ in BatchIter::new(&bytes) {}
    }
}

#[test]
fn every_record_of_plain_and_compressed_batches_with_offsets_and_timestamps() {
    let mut plain = RecordBatchBuilder::new(1_000);
    plain.append(Some(b"a"), Some(b"1"), &[], 1_000);
    plain.append(None, Some(b"2"), &[], 1_005);
    let mut bytes = plain.build();
    set_base_offset(&mut bytes, 10);
    let mut zipped = RecordBatchBuilder::new(2_000);
    zipped.append(Some(b"c"), None, &[], 2_000);
    let mut second = zipped.build_compressed(Compression::Gzip).unwrap();
    set_base_offset(&mut second, 12);
    bytes.extend_from_slice(&second);
    let mut seen = Vec::new();
    let next = for_each_record(&bytes, |_, offset, ts, r| {
        seen.push((offset, ts, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec)));
    })
    .unwrap();
    assert_eq!(next, Some(13));
    assert_eq!(
        seen,
        vec![
            (10, 1_000, Some(b"a".to_vec()), Some(b"1".to_vec())),
            (11, 1_005, None, Some(b"2".to_vec())),
            (12, 2_000, Some(b"c".to_vec()), None),
        ]
    );
    assert_eq!(for_each_record(&[], |_, _, _, _| {}).unwrap(), None);
}
