//! How much buffering a stream needs: the spread of its packets' arrival
//! delays, tracked as a decaying peak above the fastest recent packet.
//!
//! Each audio packet's relative delay is its arrival time (on the worker's
//! tick clock) minus its RTP timestamp, both in samples. Only differences
//! matter: the smallest relative delay of the last few seconds is the
//! "fastest" path, and a packet `d` samples slower than it needs `d`
//! samples of buffer to play on time. The needed lag is the peak of `d`,
//! decaying slowly so one spike does not keep the delay up for ever, while
//! a new spike raises it at once. Clock drift moves the relative delay
//! steadily; the windowed minimum follows it.

/// Window of the running minimum, in packets (about 2 s of 20 ms packets),
/// kept as two halves so old minima expire.
const MIN_WINDOW: u32 = 100;
/// The peak decays by 1/`PEAK_DECAY` of itself per packet (time constant of
/// about 5 s at 50 packets/s).
const PEAK_DECAY: i64 = 256;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DelayEstimator {
    /// Minimum relative delay in the current and the previous half window.
    current_min: Option<i64>,
    previous_min: Option<i64>,
    count: u32,
    /// Peak of (delay - minimum), in samples, with decay (fixed point ×16).
    peak_x16: i64,
}

impl DelayEstimator {
    /// Records one packet that arrived at `arrival` (samples on the local
    /// clock) with extended timestamp `ts`.
    pub(crate) fn on_packet(&mut self, arrival: i64, ts: i64) {
        let rel = arrival - ts;
        self.current_min = Some(self.current_min.map_or(rel, |m| m.min(rel)));
        self.count += 1;
        if self.count >= MIN_WINDOW / 2 {
            self.previous_min = self.current_min;
            self.current_min = None;
            self.count = 0;
        }
        let floor = self.floor().unwrap_or(rel);
        let above = (rel - floor).max(0) * 16;
        self.peak_x16 -= self.peak_x16 / PEAK_DECAY;
        self.peak_x16 = self.peak_x16.max(above);
    }

    fn floor(&self) -> Option<i64> {
        match (self.current_min, self.previous_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The buffering (samples) the recent arrivals needed.
    pub(crate) fn needed(&self) -> u32 {
        (self.peak_x16 / 16).clamp(0, i64::from(u32::MAX)) as u32
    }

    pub(crate) fn reset(&mut self) {
        *self = DelayEstimator::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_stream_needs_nothing_and_spikes_decay() {
        let mut e = DelayEstimator::default();
        for k in 0..200i64 {
            e.on_packet(1000 + k * 160, k * 160);
        }
        assert_eq!(e.needed(), 0);
        // One packet 60 ms late.
        e.on_packet(1000 + 200 * 160 + 480, 200 * 160);
        assert_eq!(e.needed(), 480);
        for k in 201..1200i64 {
            e.on_packet(1000 + k * 160, k * 160);
        }
        assert!(e.needed() < 100, "{}", e.needed());
    }

    #[test]
    fn alternating_tick_phase_needs_one_frame() {
        let mut e = DelayEstimator::default();
        for k in 0..300i64 {
            let late = if k % 3 == 0 { 160 } else { 0 };
            e.on_packet(k * 160 + late, k * 160);
        }
        assert!((150..=160).contains(&e.needed()), "{}", e.needed());
    }

    #[test]
    fn drift_is_followed_not_accumulated() {
        // The sender's clock runs 1 % fast: its timestamps gain on ours.
        let mut e = DelayEstimator::default();
        for k in 0..3000i64 {
            e.on_packet(k * 160, k * 162);
        }
        assert!(e.needed() < 320, "{}", e.needed());
    }
}
