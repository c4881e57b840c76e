//! The CPU limit: QuickJS calls the interrupt handler regularly while it runs
//! JavaScript; once the current turn has run longer than the limit, the
//! handler tells QuickJS to unwind with an uncatchable error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Measures the JavaScript turn in progress against the per-callback limit.
/// Real (not tokio) time: the limit is about how long a thread is busy.
pub(crate) struct CpuGuard {
    epoch: Instant,
    limit: Duration,
    /// Nanoseconds since `epoch` at which the turn overruns; 0 when idle.
    deadline_ns: AtomicU64,
    tripped: AtomicBool,
}

impl CpuGuard {
    pub fn new(limit: Duration) -> Arc<CpuGuard> {
        Arc::new(CpuGuard {
            epoch: Instant::now(),
            limit,
            deadline_ns: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
        })
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// A turn starts: JavaScript may now run for `limit`.
    pub fn arm(&self) {
        let deadline = self.now_ns().saturating_add(duration_ns(self.limit)).max(1);
        self.deadline_ns.store(deadline, Ordering::Relaxed);
    }

    /// The turn is over.
    pub fn disarm(&self) {
        self.deadline_ns.store(0, Ordering::Relaxed);
    }

    /// Whether a turn overran the limit (the instance must end).
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// The interrupt handler: true stops the running JavaScript.
    pub fn should_interrupt(&self) -> bool {
        let deadline = self.deadline_ns.load(Ordering::Relaxed);
        if deadline != 0 && self.now_ns() >= deadline {
            self.tripped.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn now_ns(&self) -> u64 {
        duration_ns(self.epoch.elapsed())
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_guard_never_interrupts() {
        let guard = CpuGuard::new(Duration::ZERO);
        assert!(!guard.should_interrupt());
        assert!(!guard.tripped());
    }

    #[test]
    fn overrun_trips_and_stays_tripped() {
        let guard = CpuGuard::new(Duration::from_millis(1));
        guard.arm();
        assert!(!guard.should_interrupt());
        std::thread::sleep(Duration::from_millis(5));
        assert!(guard.should_interrupt());
        guard.disarm();
        assert!(!guard.should_interrupt());
        assert!(guard.tripped());
    }
}
