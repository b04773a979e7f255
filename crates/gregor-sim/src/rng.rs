//! The randomness of a schedule: seeded, so one seed replays one history
//! on every machine.

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// A seeded source of the random choices a simulation makes.
///
/// [`Rng::seeded`] is proptest's seedable ChaCha generator;
/// [`Rng::splitmix64`] is the generator the replication simulation was
/// written with, kept so that its seeds still replay the same schedules.
pub struct Rng(Source);

enum Source {
    /// Boxed: ChaCha's state is far larger than splitmix64's one word.
    ChaCha(Box<TestRng>),
    SplitMix64(u64),
}

impl Rng {
    /// proptest's ChaCha generator, seeded with `seed`'s little-endian
    /// bytes followed by zeros.
    pub fn seeded(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        Self(Source::ChaCha(Box::new(rng)))
    }

    /// splitmix64 starting from `seed`: small, and the same everywhere.
    pub fn splitmix64(seed: u64) -> Self {
        Self(Source::SplitMix64(seed))
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        match &mut self.0 {
            Source::ChaCha(rng) => rng.random_range(0..n.max(1)),
            Source::SplitMix64(state) => {
                *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) % n.max(1)
            }
        }
    }

    /// True with a probability of `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, each as likely; `items` must not be empty.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn one_seed_gives_one_sequence() {
        for make in [Rng::seeded, Rng::splitmix64] {
            let draws = |seed| {
                let mut rng = make(seed);
                (0..64).map(|_| rng.below(1_000)).collect::<Vec<_>>()
            };
            assert_eq!(draws(7), draws(7));
            assert_ne!(draws(7), draws(8));
        }
    }

    #[test]
    fn splitmix64_is_the_published_sequence() {
        // The first outputs of splitmix64 from 0 (Vigna's reference code),
        // below u64::MAX so the modulus leaves them whole.
        let mut rng = Rng::splitmix64(0);
        assert_eq!(rng.below(u64::MAX), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.below(u64::MAX), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = Rng::seeded(1);
        assert_eq!(rng.below(0), 0);
        assert!((0..1_000).all(|_| rng.below(3) < 3));
        assert!(!rng.chance(0));
        assert!(rng.chance(100));
        assert_eq!(rng.pick(&[5]), 5);
    }
}
