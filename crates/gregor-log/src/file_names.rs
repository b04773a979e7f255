//! Kafka's names for a segment's files: the base offset as 20 digits, then
//! the kind (`.log`, `.index`, `.timeindex`, `.txnindex`, `.snapshot`,
//! gregor's `.end`).

/// File name of a segment file: the base offset as 20 digits plus `ext`.
pub(crate) fn file_name(base_offset: u64, ext: &str) -> String {
    format!("{base_offset:020}{ext}")
}
