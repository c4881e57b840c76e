//! Counters for metrics. The media tick updates plain counters and publishes
//! them to atomics once per tick, so readers never contend with the tick and
//! the hot path does no atomic read-modify-write.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($(#[$meta:meta])* $name:ident, $atomic:ident { $($(#[$fmeta:meta])* $field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: u64,)*
        }

        impl $name {
            /// Adds `new - old` field by field (fields may also decrease).
            #[allow(dead_code)]
            pub(crate) fn add_delta(&mut self, new: &$name, old: &$name) {
                $(self.$field = self.$field.wrapping_add(new.$field.wrapping_sub(old.$field));)*
            }

            /// Field-by-field sum.
            pub(crate) fn add(&mut self, other: &$name) {
                $(self.$field = self.$field.wrapping_add(other.$field);)*
            }
        }

        #[derive(Debug, Default)]
        pub(crate) struct $atomic {
            $($field: AtomicU64,)*
        }

        impl $atomic {
            pub(crate) fn store(&self, v: &$name) {
                $(self.$field.store(v.$field, Relaxed);)*
            }

            pub(crate) fn load(&self) -> $name {
                $name { $($field: self.$field.load(Relaxed),)* }
            }
        }
    };
}

counters!(
    /// Traffic counters of one leg (or, summed, of the engine).
    LegStats, AtomicLegStats {
        /// RTP packets received (any payload type, from any source).
        packets_in,
        /// RTP packets sent.
        packets_out,
        bytes_in,
        bytes_out,
        /// Sequence numbers that never arrived.
        lost,
        /// Audio packets that arrived after their playout time (dropped).
        late,
        /// Audio packets received twice (dropped).
        duplicates,
        /// Datagrams that are not RTP (or are RTCP).
        malformed,
        /// RTP packets ignored: unknown payload type, foreign source, bad payload.
        discarded,
        /// DTMF digits received.
        dtmf_in,
        /// Ticks with nothing to play although the caller's stream had started.
        underruns,
        /// Send errors (socket buffer full, unreachable).
        send_errors,
        /// Samples filled by packet-loss concealment.
        concealed,
        /// Lost packets rebuilt from forward error correction (Opus).
        recovered,
        /// Jitter buffer delay in steady state: samples (at the codec's
        /// rate) buffered beyond the frame being played, at their smallest
        /// over the last 200 ms. Summed over legs in engine totals.
        jitter_lag_samples,
    }
);

counters!(
    /// Clock counters of the media workers.
    TickStats, AtomicTickStats {
        /// Ticks run.
        ticks,
        /// Ticks that started more than 5 ms after their deadline.
        late_ticks,
        /// Times a worker fell so far behind that it skipped ticks.
        resyncs,
        /// Nanoseconds spent working in ticks (load = busy / wall time).
        busy_ns,
        /// Audio frames encoded (private and shared).
        encodes,
        /// Packets sent with a shared payload encoded once for several legs.
        shared_sends,
    }
);

/// A snapshot of the whole engine, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Traffic of all legs, including closed ones.
    pub traffic: LegStats,
    pub ticks: TickStats,
    /// Legs open now.
    pub legs: u64,
    /// Conferences open now.
    pub conferences: u64,
    /// Worker threads.
    pub workers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_and_atomics() {
        let old = LegStats {
            lost: 5,
            packets_in: 10,
            ..LegStats::default()
        };
        let new = LegStats {
            lost: 3,
            packets_in: 15,
            ..LegStats::default()
        };
        let mut total = LegStats {
            lost: 100,
            packets_in: 100,
            ..LegStats::default()
        };
        total.add_delta(&new, &old);
        assert_eq!((total.lost, total.packets_in), (98, 105));
        let a = AtomicLegStats::default();
        a.store(&total);
        assert_eq!(a.load(), total);
        let mut sum = LegStats::default();
        sum.add(&total);
        sum.add(&total);
        assert_eq!(sum.packets_in, 210);
    }
}
