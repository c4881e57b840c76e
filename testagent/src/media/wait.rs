//! Waiting for something to be heard: each helper re-checks the recording
//! whenever a packet arrives (and at least every 100 ms), and on timeout
//! fails with the last measurement so a failing test says what it heard.

use std::time::Duration;

use super::{Media, ReceivedDtmf};
use crate::analysis::{self, SpeechStats, ToneCondition, ToneMeasurement};
use crate::error::{AgentError, Result};

/// Window of the level checks (audio, silence, tone absence).
const LEVEL_WINDOW: Duration = Duration::from_millis(500);
/// Window of the speech check: a few syllables.
const SPEECH_WINDOW: Duration = Duration::from_secs(1);
/// A tone below this is gone for [`Media::wait_for_silence_of`].
pub const TONE_ABSENT_DBFS: f64 = -45.0;
const RECHECK: Duration = Duration::from_millis(100);
const MIN_RECHECK: Duration = Duration::from_millis(40);

impl Media {
    /// Polls `check` until it returns `Ok` or `timeout` passes; the error
    /// then carries `what` and the last `Err` text of `check`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Media) -> Result<T, String>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut activity = self.shared.activity.subscribe();
        loop {
            let details = match check(self) {
                Ok(value) => return Ok(value),
                Err(details) => details,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let stopped = if self.is_stopped() {
                    " (media stopped: the call ended)"
                } else {
                    ""
                };
                return Err(AgentError::WaitTimeout {
                    what: what.to_string(),
                    after: timeout,
                    details: format!("{details}{stopped}"),
                });
            }
            let wake = deadline.min(now + RECHECK);
            // Either outcome (a packet, or the recheck period) re-checks,
            // but not more often than every MIN_RECHECK: many calls may be
            // waiting at once on a small machine.
            let _ = tokio::time::timeout_at(wake, activity.changed()).await;
            tokio::time::sleep_until(deadline.min(now + MIN_RECHECK)).await;
        }
    }

    /// Waits until the tone at `freq_hz` meets `condition` over the last
    /// window, e.g. `wait_for_tone(440.0, min_db_over(20.0, &[1000.0]), t)`.
    pub async fn wait_for_tone(
        &self,
        freq_hz: f32,
        condition: ToneCondition,
        timeout: Duration,
    ) -> Result<ToneMeasurement> {
        let what = format!(
            "a {freq_hz} Hz tone ≥ {:.1} dBFS{}",
            condition.min_level_dbfs,
            if condition.others.is_empty() {
                String::new()
            } else {
                format!(
                    " and {:.1} dB over {:?} Hz",
                    condition.min_db_over, condition.others
                )
            }
        );
        let needed = analysis::samples_in(condition.window) / 2;
        self.wait_for(&what, timeout, |media| {
            let samples = media.last(condition.window);
            let measured = ToneMeasurement::measure(&samples, freq_hz, &condition.others);
            if samples.len() >= needed && condition.is_met_by(&measured) {
                Ok(measured)
            } else {
                Err(format!("last measured {measured}"))
            }
        })
        .await
    }

    /// Waits until the tone at `freq_hz` is gone (below -45 dBFS over
    /// 500 ms), whatever else is heard.
    pub async fn wait_for_silence_of(
        &self,
        freq_hz: f32,
        timeout: Duration,
    ) -> Result<ToneMeasurement> {
        self.wait_for_tone_below(freq_hz, TONE_ABSENT_DBFS, timeout)
            .await
    }

    /// Waits until the tone at `freq_hz` is at most `max_dbfs` over 500 ms.
    pub async fn wait_for_tone_below(
        &self,
        freq_hz: f32,
        max_dbfs: f64,
        timeout: Duration,
    ) -> Result<ToneMeasurement> {
        let what = format!("the {freq_hz} Hz tone to fall below {max_dbfs:.1} dBFS");
        self.wait_for(&what, timeout, |media| {
            let measured = ToneMeasurement::measure(&media.last(LEVEL_WINDOW), freq_hz, &[]);
            if measured.level_dbfs <= max_dbfs {
                Ok(measured)
            } else {
                Err(format!("last measured {measured}"))
            }
        })
        .await
    }

    /// Waits until the RMS level over 500 ms reaches `min_dbfs`; returns it.
    pub async fn wait_for_audio(&self, min_dbfs: f64, timeout: Duration) -> Result<f64> {
        let what = format!("audio ≥ {min_dbfs:.1} dBFS RMS");
        self.wait_for(&what, timeout, |media| {
            let level = analysis::rms_dbfs(&media.last(LEVEL_WINDOW));
            if level >= min_dbfs {
                Ok(level)
            } else {
                Err(format!("last RMS {level:.1} dBFS over 500 ms"))
            }
        })
        .await
    }

    /// Waits until the RMS level over 500 ms is at most `max_dbfs`.
    pub async fn wait_for_silence(&self, max_dbfs: f64, timeout: Duration) -> Result<f64> {
        let what = format!("silence ≤ {max_dbfs:.1} dBFS RMS");
        self.wait_for(&what, timeout, |media| {
            let level = analysis::rms_dbfs(&media.last(LEVEL_WINDOW));
            if level <= max_dbfs {
                Ok(level)
            } else {
                Err(format!("last RMS {level:.1} dBFS over 500 ms"))
            }
        })
        .await
    }

    /// Waits until the last second sounds like speech.
    pub async fn wait_for_speech(&self, timeout: Duration) -> Result<SpeechStats> {
        self.wait_for("speech", timeout, |media| {
            let stats = SpeechStats::measure(&media.last(SPEECH_WINDOW));
            if stats.is_speech_like() {
                Ok(stats)
            } else {
                Err(format!("last second: {stats}"))
            }
        })
        .await
    }

    /// Waits until the digits received so far end with `expected`.
    pub async fn wait_for_digits(&self, expected: &str, timeout: Duration) -> Result<String> {
        let expected = expected.to_ascii_uppercase();
        self.wait_for(&format!("digits {expected:?}"), timeout, |media| {
            let received = media.received_digits();
            if received.ends_with(&expected) {
                Ok(received)
            } else {
                Err(format!("received {received:?}"))
            }
        })
        .await
    }

    /// Waits until at least `count` digits were received.
    pub async fn wait_for_dtmf_count(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedDtmf>> {
        self.wait_for(&format!("{count} digits"), timeout, |media| {
            let received = media.received_dtmf();
            if received.len() >= count {
                Ok(received)
            } else {
                Err(format!("received {:?}", media.received_digits()))
            }
        })
        .await
    }

    /// Waits until at least `count` RTP packets arrived.
    pub async fn wait_for_packets(&self, count: u64, timeout: Duration) -> Result<u64> {
        self.wait_for(&format!("{count} RTP packets"), timeout, |media| {
            let received = media.packets_received();
            if received >= count {
                Ok(received)
            } else {
                Err(format!("received {received} packets"))
            }
        })
        .await
    }
}
