//! Arbitrary bytes through the record batch reader: header parsing, full
//! validation, batch iteration, decompression and record decoding must
//! never panic, and a batch that validates must decode to exactly its
//! declared records. Each input is tried as given and with its first
//! batch's CRC made right, so mutations get past the checksum to the
//! record decoders (random bytes almost never carry a valid CRC-32C).
#![no_main]

use gregor_log::batch::{compute_crc, record_section, validate_batch, BatchIter, Records, LOG_OVERHEAD};
use libfuzzer_sys::fuzz_target;

/// Where the CRC field starts and where the bytes it covers start.
const CRC_AT: usize = 17;
const CRC_COVERS_FROM: usize = 21;

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_right_crc(data) {
        check(&fixed);
    }
});

/// `data` with its first batch's CRC recomputed, when its declared length fits.
fn with_right_crc(data: &[u8]) -> Option<Vec<u8>> {
    let length = i32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    let total = LOG_OVERHEAD + usize::try_from(length).ok()?;
    if total <= CRC_COVERS_FROM || total > data.len() {
        return None;
    }
    let mut fixed = data.to_vec();
    let crc = compute_crc(&fixed[..total]);
    fixed[CRC_AT..CRC_COVERS_FROM].copy_from_slice(&crc.to_be_bytes());
    Some(fixed)
}

fn check(data: &[u8]) {
    if let Ok(header) = validate_batch(data) {
        let batch = &data[..header.total_size()];
        let records = Records::new(batch, &header).collect::<Result<Vec<_>, _>>();
        if header.compression().ok() == Some(gregor_log::batch::Compression::None) {
            let records = records.expect("a validated uncompressed batch decodes");
            assert_eq!(records.len(), header.record_count as usize);
        } else if let Ok(section) = record_section(batch, &header) {
            for record in Records::from_section(&section, header.record_count) {
                let _ = record;
            }
        }
    }
    let mut end = 0;
    for item in BatchIter::new(data) {
        let Ok((at, header)) = item else { break };
        assert_eq!(at, end, "batches are contiguous");
        end = at + header.total_size();
        assert!(end <= data.len());
        for record in Records::new(&data[at..end], &header) {
            let _ = record;
        }
    }
}
