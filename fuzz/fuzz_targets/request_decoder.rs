//! Arbitrary bytes as a Kafka request frame (what follows the size prefix):
//! decoding answers with a typed request or an error that closes the
//! connection — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// As in the broker: an impossible pre-allocation must not abort.
#[global_allocator]
static ALLOCATOR: gregor_routing::HugeAllocationGuard = gregor_routing::HugeAllocationGuard;

fuzz_target!(|data: &[u8]| {
    let _ = gregor_routing::decode_frame(bytes::Bytes::copy_from_slice(data));
});
