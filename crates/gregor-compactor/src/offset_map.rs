//! The offset map: key digest → latest offset, in a fixed memory budget.
//!
//! Open addressing with linear probing over a flat array of 24-byte slots
//! (a 128-bit xxh3 digest of the key and the offset), filled to at most
//! 90% (Kafka's dedupe buffer load factor). 128 bits make a collision —
//! which would drop a live record — as unlikely as with Kafka's MD5.

use xxhash_rust::xxh3::xxh3_128;

const SLOT_BYTES: usize = 24;
const LOAD_FACTOR: f64 = 0.9;

/// Latest offset per key, bounded by a memory budget. The slots are one
/// zeroed allocation (`offset + 1` is stored, so zero means empty): the
/// kernel hands out its pages only as keys land in them, and `clear`
/// gives them back, so an idle cleaner holds no memory.
pub struct OffsetMap {
    /// Three words a slot: digest low, digest high, offset + 1.
    slots: Vec<u64>,
    capacity: usize,
    len: usize,
    limit: usize,
}

impl OffsetMap {
    /// A map using at most about `memory_bytes` (at least room for a few keys).
    pub fn with_memory(memory_bytes: usize) -> Self {
        let capacity = (memory_bytes / SLOT_BYTES).max(16);
        Self {
            slots: vec![0; capacity * 3],
            capacity,
            len: 0,
            limit: ((capacity as f64) * LOAD_FACTOR) as usize,
        }
    }

    /// Records `offset` as the latest for `key` (a later offset wins).
    /// Returns false, changing nothing, when the map is full.
    pub fn put(&mut self, key: &[u8], offset: u64) -> bool {
        let digest = xxh3_128(key);
        let i = self.find(digest);
        let stored = offset.saturating_add(1);
        let slot = &mut self.slots[3 * i..3 * i + 3];
        if slot[2] == 0 {
            if self.len >= self.limit {
                return false;
            }
            self.len += 1;
            slot.copy_from_slice(&[digest as u64, (digest >> 64) as u64, stored]);
        } else if stored > slot[2] {
            slot[2] = stored;
        }
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        let i = self.find(xxh3_128(key));
        self.slots[3 * i + 2].checked_sub(1)
    }

    /// True when no new key fits.
    pub fn is_full(&self) -> bool {
        self.len >= self.limit
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every key and gives the touched memory back (a fresh zeroed
    /// allocation costs nothing until used).
    pub fn clear(&mut self) {
        self.slots = Vec::new();
        self.slots = vec![0; self.capacity * 3];
        self.len = 0;
    }

    /// The slot holding `digest`, or the empty slot where it would go.
    fn find(&self, digest: u128) -> usize {
        let (low, high) = (digest as u64, (digest >> 64) as u64);
        let mut i = (low as usize) % self.capacity;
        loop {
            let slot = &self.slots[3 * i..3 * i + 3];
            if slot[2] == 0 || (slot[0] == low && slot[1] == high) {
                return i;
            }
            i = (i + 1) % self.capacity;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_new_keys_when_full_but_updates_known_ones() {
        let mut map = OffsetMap::with_memory(16 * SLOT_BYTES);
        let mut n = 0u64;
        while map.put(format!("k{n}").as_bytes(), n) {
            n += 1;
        }
        assert_eq!(map.len(), 14);
        assert!(map.is_full());
        assert!(map.put(b"k0", 100));
        assert_eq!(map.get(b"k0"), Some(100));
        assert!(map.put(b"k0", 5), "an older offset is ignored, not refused");
        assert_eq!(map.get(b"k0"), Some(100));
        map.clear();
        assert_eq!(map.get(b"k0"), None);
    }

    proptest! {
        #[test]
        fn holds_the_latest_offset_per_key(updates in proptest::collection::vec((0u8..50, 0u64..1000), 1..300)) {
            let mut map = OffsetMap::with_memory(1 << 16);
            let mut model = std::collections::HashMap::new();
            for (k, o) in updates {
                prop_assert!(map.put(&[k], o));
                let e = model.entry(k).or_insert(o);
                *e = (*e).max(o);
            }
            for (k, o) in model {
                prop_assert_eq!(map.get(&[k]), Some(o));
            }
        }
    }
}
