//! Arbitrary bytes through the record batch reader: header parsing, full
//! validation, batch iteration, decompression and record decoding must
//! never panic, and a batch that validates must decode to exactly its
//! declared records.
#![no_main]

use gregor_log::batch::{record_section, validate_batch, BatchIter, Records};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
