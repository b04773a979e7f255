//! Arbitrary bytes as a `__transaction_state` record (the first byte
//! splits key from value): parsing never panics, and a key or value it
//! reads encodes back to bytes that read the same (a value written at v0:
//! client transaction version 0 and every topic fitting v0, keeps no
//! tagged fields).
#![no_main]

use gregor_transaction::records::{key_bytes, parse_key, parse_value, value_bytes, value_version, TransactionLogValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = rest.split_at((split as usize).min(rest.len()));
    if let Ok(Some(id)) = parse_key(key) {
        assert_eq!(parse_key(&key_bytes(&id)), Ok(Some(id)));
    }
    if let Ok(v) = parse_value(value) {
        let kept = if value_version(&v) == 0 {
            TransactionLogValue {
                previous_producer_id: -1,
                next_producer_id: -1,
                ..v.clone()
            }
        } else {
            v.clone()
        };
        assert_eq!(parse_value(&value_bytes(&v)), Ok(kept));
    }
});
