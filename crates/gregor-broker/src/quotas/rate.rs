//! The rate a client's quota is checked against, and the throttle time of
//! a violation: Kafka's `Rate` over a `SampledTotal` and
//! `QuotaUtils.throttleTime`, sans IO (every call is given the time).
//!
//! A rate is the sum of the values recorded in the retained samples over
//! the time they span — at least `samples - 1` whole windows, so that a
//! client's first burst is not measured over a few milliseconds.

/// The sampling of quota rates: `quota.window.num` samples of
/// `quota.window.size.seconds` each (Kafka: 11 of 1 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Number of samples retained (`quota.window.num`).
    pub samples: usize,
    /// The span of one sample in ms (`quota.window.size.seconds` × 1000).
    pub window_ms: i64,
}

impl Default for QuotaWindow {
    fn default() -> Self {
        Self {
            samples: 11,
            window_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    start_ms: i64,
    last_event_ms: i64,
}

impl Sample {
    fn new(now_ms: i64) -> Self {
        Self {
            value: 0.0,
            start_ms: now_ms,
            last_event_ms: now_ms,
        }
    }
}

/// A sampled rate (per second) of recorded values.
#[derive(Debug, Clone, Default)]
pub struct SampledRate {
    samples: Vec<Sample>,
    current: usize,
}

impl SampledRate {
    /// Adds `value` at `now_ms` (a negative value takes back an earlier one).
    pub fn record(&mut self, window: QuotaWindow, value: f64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
        }
        if now_ms - self.samples[self.current].start_ms >= window.window_ms {
            // One extra sample overlaps the start of the monitored window.
            self.current = (self.current + 1) % (window.samples.max(1) + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now_ms));
            } else {
                self.samples[self.current] = Sample::new(now_ms);
            }
        }
        let sample = &mut self.samples[self.current];
        sample.value += value;
        sample.last_event_ms = now_ms;
    }

    /// Forgets samples without an event in the monitored window.
    fn purge(&mut self, window: QuotaWindow, now_ms: i64) {
        let expire = window.samples as i64 * window.window_ms;
        for sample in &mut self.samples {
            if now_ms - sample.last_event_ms >= expire {
                *sample = Sample::new(now_ms);
            }
        }
    }

    /// The time (ms) the rate is measured over at `now_ms`: since the
    /// oldest retained sample, and at least `samples - 1` windows.
    pub fn window_size_ms(&mut self, window: QuotaWindow, now_ms: i64) -> i64 {
        self.purge(window, now_ms);
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now_ms);
        let mut elapsed = now_ms - oldest;
        let full = elapsed / window.window_ms.max(1);
        let min_full = window.samples.saturating_sub(1) as i64;
        if full < min_full {
            elapsed += (min_full - full) * window.window_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second at `now_ms`.
    pub fn rate(&mut self, window: QuotaWindow, now_ms: i64) -> f64 {
        let size = self.window_size_ms(window, now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (size as f64 / 1000.0)
    }

    /// Records `value` and checks the rate against `bound`: the throttle
    /// time (ms) when it is over, else 0.
    pub fn record_and_throttle(&mut self, window: QuotaWindow, value: f64, bound: f64, now_ms: i64) -> i64 {
        self.record(window, value, now_ms);
        let rate = self.rate(window, now_ms);
        if rate <= bound {
            return 0;
        }
        let size = self.window_size_ms(window, now_ms);
        throttle_time_ms(rate, bound, size, window)
    }
}

/// Kafka's throttle time of a rate over its bound: the time that brings
/// the rate back to the bound if nothing more is recorded,
/// `(rate - bound) / bound × window size`, rounded. A bound of zero or
/// less (no traffic allowed) throttles for the whole monitored window.
pub fn throttle_time_ms(rate: f64, bound: f64, window_size_ms: i64, window: QuotaWindow) -> i64 {
    let most = window.samples as i64 * window.window_ms;
    if bound <= 0.0 {
        return most;
    }
    let time = (rate - bound) / bound * window_size_ms as f64;
    if time.is_finite() {
        (time.round() as i64).clamp(0, i64::from(i32::MAX))
    } else {
        most
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: QuotaWindow = QuotaWindow {
        samples: 11,
        window_ms: 1000,
    };

    #[test]
    fn a_first_burst_is_measured_over_ten_windows() {
        let mut rate = SampledRate::default();
        rate.record(W, 10_000.0, 0);
        // 10 full windows assumed: 10 000 bytes over 10 s.
        assert_eq!(rate.window_size_ms(W, 0), 10_000);
        assert!((rate.rate(W, 0) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn throttle_time_is_kafkas_formula() {
        let mut rate = SampledRate::default();
        // 20 000 bytes at t=0 against 1000 B/s: rate 2000 over 10 s,
        // (2000 - 1000) / 1000 × 10 000 ms = 10 000 ms.
        assert_eq!(rate.record_and_throttle(W, 20_000.0, 1000.0, 0), 10_000);
        // Under the bound: no throttle.
        let mut other = SampledRate::default();
        assert_eq!(other.record_and_throttle(W, 5_000.0, 1000.0, 0), 0);
    }

    #[test]
    fn samples_older_than_the_window_are_forgotten() {
        let mut rate = SampledRate::default();
        rate.record(W, 50_000.0, 0);
        assert!(rate.rate(W, 0) > 1000.0);
        // 11 s without events: the sample expires.
        assert_eq!(rate.rate(W, 11_000), 0.0);
    }

    #[test]
    fn unrecording_takes_a_value_back() {
        let mut rate = SampledRate::default();
        rate.record(W, 3000.0, 10);
        rate.record(W, -3000.0, 20);
        assert_eq!(rate.rate(W, 20), 0.0);
    }

    #[test]
    fn a_zero_bound_throttles_for_the_whole_window() {
        assert_eq!(throttle_time_ms(10.0, 0.0, 10_000, W), 11_000);
    }

    proptest! {
        /// A client that waits out every throttle it is given stays close
        /// to its quota over the long run (within 10% over 30 monitored
        /// windows: a client may burst up to `samples - 1` windows' worth
        /// at once, so shorter runs see the bursts).
        #[test]
        fn obeying_the_throttle_keeps_the_rate_near_the_bound(
            bound in 1_000u32..1_000_000,
            size_fraction in 0.01f64..0.5,
            samples in 2usize..=11,
        ) {
            let window = QuotaWindow { samples, window_ms: 1000 };
            let bound = f64::from(bound);
            let size = (bound * size_fraction).max(1.0);
            let mut rate = SampledRate::default();
            let (mut now, mut sent) = (0i64, 0.0);
            let horizon = 30 * samples as i64 * window.window_ms;
            while now < horizon {
                let throttle = rate.record_and_throttle(window, size, bound, now);
                sent += size;
                now += throttle.max(1);
            }
            let achieved = sent / (now as f64 / 1000.0);
            prop_assert!(achieved <= bound * 1.1, "achieved {achieved} for bound {bound}");
            prop_assert!(achieved >= bound * 0.9, "achieved {achieved} for bound {bound}");
        }

        /// The throttle time is never negative and zero exactly when the
        /// rate is within the bound.
        #[test]
        fn throttle_is_zero_iff_within_bound(
            values in proptest::collection::vec((0.0f64..100_000.0, 0i64..3000), 1..50),
            bound in 1.0f64..100_000.0,
        ) {
            let mut rate = SampledRate::default();
            let mut now = 0;
            for (value, step) in values {
                now += step;
                let throttle = rate.record_and_throttle(W, value, bound, now);
                let measured = rate.rate(W, now);
                prop_assert!(throttle >= 0);
                if measured <= bound {
                    prop_assert_eq!(throttle, 0);
                }
            }
        }
    }
}
