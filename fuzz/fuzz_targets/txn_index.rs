//! Arbitrary bytes as a transaction index (`<base>.txnindex`): the decoder
//! never panics, and what it accepts encodes back to the same bytes (minus
//! a partial entry at the end, which it ignores as Kafka does).
#![no_main]

use gregor_log::txn_index::ENTRY_SIZE;
use gregor_log::AbortedTxn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = AbortedTxn::decode_all(data) {
        let whole = data.len() / ENTRY_SIZE * ENTRY_SIZE;
        let again: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        assert_eq!(again, &data[..whole]);
    }
});
