//! `/metrics` in the Prometheus text format, written by hand (a handful of
//! counters and gauges need no library). Aggregates only, no tenant
//! labels, so it is served without a key.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use switchboard_sip::{MessageKind, SipStats};

use crate::engine::{Engine, EngineEvent, EngineObserver};
use crate::storage::CallResult;

const RESULTS: [CallResult; 4] = [
    CallResult::Answered,
    CallResult::Rejected,
    CallResult::Cancelled,
    CallResult::Failed,
];

/// Counts finished calls by result.
#[derive(Default)]
pub struct Metrics {
    ended: [AtomicU64; 4],
}

impl EngineObserver for Metrics {
    fn on_event(&self, event: &EngineEvent) {
        if let EngineEvent::CallEnded { record } = event {
            let result = CallResult::of(
                record.answered_at.is_some(),
                &record.end_reason,
                record.sip_code,
            );
            if let Some(i) = RESULTS.iter().position(|r| *r == result) {
                self.ended[i].fetch_add(1, Relaxed);
            }
        }
    }
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics page.
pub fn render(engine: &Engine, metrics: &Metrics) -> String {
    let mut out = Text(String::with_capacity(4096));
    let stats = engine.stats();
    let conferences = engine.conferences();
    let participants: usize = conferences
        .iter()
        .map(|c| c.snapshot().participants.len())
        .sum();

    out.single(
        "switchboard_calls_active",
        "gauge",
        "Calls in progress.",
        engine.active_calls() as u64,
    );
    out.family(
        "switchboard_calls_total",
        "counter",
        "Finished calls by result (answered, rejected, cancelled, failed).",
    );
    for (i, result) in RESULTS.iter().enumerate() {
        out.sample(
            "switchboard_calls_total",
            &[("result", result.as_str())],
            metrics.ended[i].load(Relaxed),
        );
    }
    out.single(
        "switchboard_calls_received_total",
        "counter",
        "INVITEs that started a call attempt.",
        stats.calls_total.load(Relaxed),
    );
    out.single(
        "switchboard_conferences_active",
        "gauge",
        "Conferences open now.",
        conferences.len() as u64,
    );
    out.single(
        "switchboard_conference_participants",
        "gauge",
        "Participants in all conferences now.",
        participants as u64,
    );
    out.single(
        "switchboard_scenario_errors_total",
        "counter",
        "Scenario errors (exceptions, limits, rejected promises).",
        stats.scenario_errors.load(Relaxed),
    );
    sip(&mut out, &engine.sip_stats());
    media(&mut out, &engine.media_stats());
    out.0
}

fn sip(out: &mut Text, stats: &SipStats) {
    out.family(
        "switchboard_sip_requests_total",
        "counter",
        "SIP requests by direction and method.",
    );
    for m in &stats.messages {
        if let MessageKind::Request(method) = m.kind {
            out.sample(
                "switchboard_sip_requests_total",
                &[("direction", m.direction.as_str()), ("method", method)],
                m.count,
            );
        }
    }
    out.family(
        "switchboard_sip_responses_total",
        "counter",
        "SIP responses by direction and status code.",
    );
    for m in &stats.messages {
        if let MessageKind::Response(code) = m.kind {
            out.sample(
                "switchboard_sip_responses_total",
                &[
                    ("direction", m.direction.as_str()),
                    ("code", &code.to_string()),
                ],
                m.count,
            );
        }
    }
    out.single(
        "switchboard_sip_malformed_total",
        "counter",
        "Received SIP messages refused as malformed.",
        stats.malformed_in,
    );
}

fn media(out: &mut Text, stats: &switchboard_media::MediaStats) {
    let t = &stats.traffic;
    out.family(
        "switchboard_rtp_packets_total",
        "counter",
        "RTP packets by direction.",
    );
    out.sample(
        "switchboard_rtp_packets_total",
        &[("direction", "in")],
        t.packets_in,
    );
    out.sample(
        "switchboard_rtp_packets_total",
        &[("direction", "out")],
        t.packets_out,
    );
    out.family(
        "switchboard_rtp_bytes_total",
        "counter",
        "RTP bytes by direction.",
    );
    out.sample(
        "switchboard_rtp_bytes_total",
        &[("direction", "in")],
        t.bytes_in,
    );
    out.sample(
        "switchboard_rtp_bytes_total",
        &[("direction", "out")],
        t.bytes_out,
    );
    out.single(
        "switchboard_rtp_packets_lost_total",
        "counter",
        "RTP packets that never arrived (sequence gaps).",
        t.lost,
    );
    out.single(
        "switchboard_rtp_packets_late_total",
        "counter",
        "RTP packets that arrived after their playout time.",
        t.late,
    );
    out.single(
        "switchboard_rtp_packets_discarded_total",
        "counter",
        "RTP packets ignored (duplicates, malformed, unknown payload or source).",
        t.duplicates + t.malformed + t.discarded,
    );
    out.single(
        "switchboard_dtmf_digits_total",
        "counter",
        "DTMF digits received.",
        t.dtmf_in,
    );
    out.single(
        "switchboard_media_legs",
        "gauge",
        "RTP legs open now.",
        stats.legs,
    );
    out.single(
        "switchboard_media_late_ticks_total",
        "counter",
        "Media ticks that started more than 5 ms late.",
        stats.ticks.late_ticks,
    );
}
