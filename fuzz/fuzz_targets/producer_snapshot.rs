//! Arbitrary bytes as a producer-state snapshot (`<offset>.snapshot`): the
//! decoder never panics, and what it accepts encodes back to a snapshot
//! that decodes to the same state.
#![no_main]

use gregor_log::producer_state::ProducerStates;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = ProducerStates::decode_snapshot(data, 0) {
        let again = ProducerStates::decode_snapshot(&state.encode_snapshot(), 0).expect("own snapshot decodes");
        assert_eq!(again, state);
    }
});
