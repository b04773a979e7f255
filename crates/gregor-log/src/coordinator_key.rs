//! Where a coordinator key lives: Kafka places a consumer group in
//! `__consumer_offsets` and a transactional id in `__transaction_state`
//! by the same rule, `Utils.abs(key.hashCode) % partitions`, with Java's
//! `String.hashCode`. Both coordinators (and FindCoordinator) use this one
//! function so that gregor puts every key where Kafka does.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code
/// units, wrapping in 32 bits.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition of an internal topic with `partitions` partitions that
/// holds `key` (a group id or a transactional id): `abs(hashCode) %
/// partitions`, where, as Kafka's `Utils.abs`, `i32::MIN` maps to 0. A
/// count of 0 is treated as 1.
pub fn coordinator_partition(key: &str, partitions: u32) -> i32 {
    let hash = java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % i32::try_from(partitions.max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_where_kafka_puts_them() {
        // Java: "my-group".hashCode() == -1906497762; abs % 50 == 12.
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(coordinator_partition("my-group", 50), 12);
        assert_eq!(coordinator_partition("e2e", 50), 12);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(coordinator_partition("", 50), 0);
        // Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
        // Non-BMP characters hash as their two UTF-16 surrogates.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        assert_eq!(coordinator_partition("x", 0), 0);
    }
}
