//! Keeps the cleaner's I/O under `log.cleaner.io.max.bytes.per.second`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A rate limiter shared by the cleaner threads.
pub struct Throttler {
    bytes_per_second: f64,
    window: Mutex<(Instant, f64)>,
}

impl Throttler {
    /// At most `bytes_per_second` (infinite: no limit).
    pub fn new(bytes_per_second: f64) -> Self {
        Self {
            bytes_per_second,
            window: Mutex::new((Instant::now(), 0.0)),
        }
    }

    /// Accounts `bytes` of I/O and sleeps as long as needed to stay under the rate.
    pub fn account(&self, bytes: u64) {
        if !self.bytes_per_second.is_finite() {
            return;
        }
        let sleep = {
            let mut w = self.window.lock();
            w.1 += bytes as f64;
            let elapsed = w.0.elapsed().as_secs_f64();
            let due = w.1 / self.bytes_per_second;
            if elapsed > 1.0 && due <= elapsed {
                *w = (Instant::now(), 0.0);
            }
            (due - elapsed).max(0.0)
        };
        if sleep > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(sleep));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slows_down_to_the_rate() {
        let t = Throttler::new(1_000_000.0);
        let start = Instant::now();
        for _ in 0..4 {
            t.account(50_000);
        }
        assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
        let free = Throttler::new(f64::INFINITY);
        let start = Instant::now();
        free.account(u64::MAX / 2);
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
