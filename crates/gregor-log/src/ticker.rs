//! A thread that does one job on a period until it is stopped. Both
//! coordinators (gregor-group's and gregor-transaction's) tick on one;
//! it lives here, in the layer both stand on, beside the [`Clock`] they
//! share.
//!
//! [`Clock`]: crate::Clock

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The thread that calls a function on a period, until [`Ticker::stop`]
/// (or until the `Ticker` is dropped, which lets the thread end on its
/// own).
pub struct Ticker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Ticker {
    /// Starts the thread `name`, which calls `tick` every `every`, the
    /// first time one period from now.
    pub fn spawn(name: &str, every: Duration, mut tick: impl FnMut() + Send + 'static) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                tick();
            }
        })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread and waits for it (a tick under way finishes).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::Ticker;

    #[test]
    fn ticks_on_its_period_until_stopped() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let ticker = Ticker::spawn("test-ticker", Duration::from_millis(1), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while ticks.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "the ticker never ticked three times");
            std::thread::yield_now();
        }
        ticker.stop();
        assert_eq!(Arc::strong_count(&ticks), 1, "the thread and its tick are gone");
    }
}
