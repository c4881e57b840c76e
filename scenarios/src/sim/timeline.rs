//! What happened in a simulation, in order, with times: per call, per
//! conference, for the host (dials, fetches), and all of it merged into one
//! [`Timeline`] for printing.

use std::fmt;
use std::time::Duration;

use crate::host::LogLevel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupSide {
    /// The scenario hung up.
    Local,
    /// The caller hung up.
    Remote,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    Answered,
    /// 180 Ringing sent.
    Ringing,
    /// 183 with media sent.
    EarlyMedia,
    Rejected {
        code: u16,
        reason: Option<String>,
    },
    /// Extra headers the scenario sent (on answer, hangup or an INVITE).
    SentHeaders {
        headers: Vec<(String, String)>,
    },
    /// Speech started (on a call or into a conference).
    Said {
        text: String,
    },
    /// Playback started.
    Played {
        source: String,
        looped: bool,
    },
    /// Speech or playback was cut short (`stopMedia`, barge-in); `text` is
    /// the text or the source.
    Interrupted {
        text: String,
    },
    /// The caller pressed a key.
    Digit {
        digit: char,
    },
    /// The scenario sent DTMF.
    SentDigits {
        digits: String,
    },
    HungUp {
        by: HangupSide,
    },
    /// The scenario routed the call.
    Routed {
        destination: String,
    },
    RecordingStarted {
        id: String,
        location: String,
    },
    RecordingStopped {
        id: String,
        location: String,
        duration_ms: u64,
    },
    Bridged {
        with: String,
    },
    Unbridged {
        with: String,
    },
    /// The scenario placed an outbound call.
    Dialing {
        uri: String,
    },
    DialAnswered {
        uri: String,
        call_id: String,
    },
    DialFailed {
        uri: String,
        code: u16,
        reason: String,
    },
    /// A `fetch` and how it went (`200`, `not allowed`, ...).
    Fetched {
        method: String,
        url: String,
        outcome: String,
    },
    /// A line of the scenario's log (collected digits, console).
    Log {
        level: LogLevel,
        message: String,
    },
    /// A participant joined / left a conference.
    Joined {
        call_id: String,
    },
    Left {
        call_id: String,
    },
    /// A participant was muted, unmuted, deafened, ... (`change` says how).
    Participant {
        call_id: String,
        change: String,
    },
    Kicked {
        call_id: String,
    },
    Talking {
        call_id: String,
    },
    Silent {
        call_id: String,
    },
    /// Room-wide options changed.
    Configured {
        max_participants: Option<usize>,
        wait_music: Option<String>,
    },
    /// Wait music started (`Some`) or stopped (`None`) for a lone participant.
    WaitMusic {
        source: Option<String>,
    },
    /// The conference was ended.
    ConferenceEnded,
    /// A note of the simulator itself.
    Note {
        text: String,
    },
}

/// One line of a timeline: when (since the call or conference was created) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEntry {
    pub at: Duration,
    pub event: SimEvent,
}

fn headers_text(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::Answered => write!(f, "answered"),
            SimEvent::Ringing => write!(f, "ringing (180)"),
            SimEvent::EarlyMedia => write!(f, "early media (183)"),
            SimEvent::Rejected { code, reason } => match reason {
                Some(reason) => write!(f, "rejected {code} {reason}"),
                None => write!(f, "rejected {code}"),
            },
            SimEvent::SentHeaders { headers } => {
                write!(f, "sent headers {}", headers_text(headers))
            }
            SimEvent::Said { text } => write!(f, "said {text:?}"),
            SimEvent::Played { source, looped } => {
                write!(f, "played {source}")?;
                if *looped {
                    write!(f, " (looped)")?;
                }
                Ok(())
            }
            SimEvent::Interrupted { text } => write!(f, "interrupted {text:?}"),
            SimEvent::Digit { digit } => write!(f, "caller pressed {digit}"),
            SimEvent::SentDigits { digits } => write!(f, "sent DTMF {digits}"),
            SimEvent::HungUp {
                by: HangupSide::Local,
            } => write!(f, "hung up by the scenario"),
            SimEvent::HungUp {
                by: HangupSide::Remote,
            } => write!(f, "caller hung up"),
            SimEvent::Routed { destination } => write!(f, "routed to {destination:?}"),
            SimEvent::RecordingStarted { id, location } => {
                write!(f, "recording {id} started to {location}")
            }
            SimEvent::RecordingStopped {
                id, duration_ms, ..
            } => write!(
                f,
                "recording {id} stopped after {:.1}s",
                *duration_ms as f64 / 1000.0
            ),
            SimEvent::Bridged { with } => write!(f, "bridged with {with}"),
            SimEvent::Unbridged { with } => write!(f, "unbridged from {with}"),
            SimEvent::Dialing { uri } => write!(f, "dialing {uri}"),
            SimEvent::DialAnswered { uri, call_id } => {
                write!(f, "dial {uri} answered as {call_id}")
            }
            SimEvent::DialFailed { uri, code, reason } => {
                write!(f, "dial {uri} failed: {code} {reason}")
            }
            SimEvent::Fetched {
                method,
                url,
                outcome,
            } => write!(f, "fetch {method} {url}: {outcome}"),
            SimEvent::Log { level, message } => {
                let level = match level {
                    LogLevel::Debug => "debug",
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                    LogLevel::Error => "ERROR",
                };
                write!(f, "log {level}: {message}")
            }
            SimEvent::Joined { call_id } => write!(f, "{call_id} joined"),
            SimEvent::Left { call_id } => write!(f, "{call_id} left"),
            SimEvent::Participant { call_id, change } => write!(f, "{call_id} {change}"),
            SimEvent::Kicked { call_id } => write!(f, "{call_id} kicked"),
            SimEvent::Talking { call_id } => write!(f, "{call_id} talking"),
            SimEvent::Silent { call_id } => write!(f, "{call_id} silent"),
            SimEvent::Configured {
                max_participants,
                wait_music,
            } => {
                let max = max_participants.map_or("none".to_string(), |m| m.to_string());
                let music = wait_music.as_deref().unwrap_or("none");
                write!(f, "configured: max participants {max}, wait music {music}")
            }
            SimEvent::WaitMusic { source: Some(s) } => write!(f, "wait music {s} on"),
            SimEvent::WaitMusic { source: None } => write!(f, "wait music off"),
            SimEvent::ConferenceEnded => write!(f, "conference ended"),
            SimEvent::Note { text } => write!(f, "({text})"),
        }
    }
}

impl fmt::Display for SimEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>8.3}s] {}", self.at.as_secs_f64(), self.event)
    }
}

/// One line of a merged timeline: when (since the simulation started),
/// whose (a call id, `conf <name>`, or `host`) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: Duration,
    pub source: String,
    pub event: SimEvent,
}

/// Everything that happened in a simulation, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// Merges per-source entries (each with its source's offset from the
    /// simulation's start); equal times keep their source's order.
    pub(crate) fn merge(parts: Vec<(String, Duration, Vec<SimEntry>)>) -> Timeline {
        let mut entries: Vec<TimelineEntry> = parts
            .into_iter()
            .flat_map(|(source, offset, entries)| {
                entries.into_iter().map(move |e| TimelineEntry {
                    at: offset + e.at,
                    source: source.clone(),
                    event: e.event,
                })
            })
            .collect();
        entries.sort_by_key(|e| e.at);
        Timeline { entries }
    }

    /// The events of one source.
    pub fn of(&self, source: &str) -> Vec<&SimEvent> {
        self.entries
            .iter()
            .filter(|e| e.source == source)
            .map(|e| &e.event)
            .collect()
    }

    /// Whether an entry matches `predicate`.
    pub fn saw(&self, predicate: impl Fn(&TimelineEntry) -> bool) -> bool {
        self.entries.iter().any(predicate)
    }

    /// Lines whose text contains `text`.
    pub fn lines_containing(&self, text: &str) -> Vec<String> {
        self.to_string()
            .lines()
            .filter(|l| l.contains(text))
            .map(str::to_string)
            .collect()
    }
}

impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .entries
            .iter()
            .map(|e| e.source.chars().count())
            .max()
            .unwrap_or(0);
        for entry in &self.entries {
            writeln!(
                f,
                "[{:>8.3}s] {:<width$}  {}",
                entry.at.as_secs_f64(),
                entry.source,
                entry.event
            )?;
        }
        Ok(())
    }
}
