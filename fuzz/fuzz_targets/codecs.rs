//! Arbitrary bytes through the batch codecs: the first byte picks gzip,
//! snappy, lz4 or zstd. Decompressing garbage must fail cleanly (never
//! panic, never exceed the size bound), and compressing the bytes then
//! decompressing them must give them back.
#![no_main]

use gregor_log::batch::Compression;
use gregor_log::compression::{compress, decompress, MAX_DECOMPRESSED_BYTES};
use libfuzzer_sys::fuzz_target;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let codec = CODECS[pick as usize % CODECS.len()];
    if let Ok(out) = decompress(codec, rest) {
        assert!(out.len() <= MAX_DECOMPRESSED_BYTES);
    }
    let packed = compress(codec, rest).expect("any bytes compress");
    assert_eq!(decompress(codec, &packed).expect("own output decompresses"), rest);
});
