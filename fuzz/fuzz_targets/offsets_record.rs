//! Arbitrary bytes as a `__consumer_offsets` record (the first byte splits
//! key from value; an odd second byte makes the value null): parsing never
//! panics, and an offset commit it reads encodes back to the same record.
#![no_main]

use gregor_group::records::{offset_key, offset_value, parse, OffsetsRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = rest.split_at((split as usize).min(rest.len()));
    let value = (split % 2 == 0).then_some(value);
    if let Some(OffsetsRecord::Offset(k, v)) = parse(key, value) {
        let again = parse(&offset_key(&k), v.as_ref().map(offset_value).as_deref());
        assert_eq!(again, Some(OffsetsRecord::Offset(k, v)));
    }
});
