//! A scriptable SIP softphone for switchboard's integration tests.
//!
//! The agent is deliberately independent of the engine's crates: its own
//! UA logic (simple transactions and dialogs) over plain tokio UDP/TCP, its
//! own G.711 and RTP, with `rsipstack::sip` only for message types and
//! parsing. A bug shared by the engine and its tests cannot hide.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_testagent::AgentError> {
//! use std::time::Duration;
//! use switchboard_testagent::{analysis::min_db_over, Agent, AgentConfig, CallOptions};
//!
//! let agent = Agent::bind(AgentConfig::udp()).await?;
//! let call = agent.call("sip:conf_1234@127.0.0.1:5060", CallOptions::default()).await?;
//! call.play_tone(440.0, 0.3);
//! call.send_dtmf("1234#").await?;
//! call.wait_for_tone(1000.0, min_db_over(20.0, &[440.0]), Duration::from_secs(10)).await?;
//! call.hangup().await?;
//! # Ok(()) }
//! ```
//!
//! Layout: [`agent`] routes SIP to [`outgoing`] INVITEs, [`incoming`] calls
//! and dialogs; a [`Call`] owns a [`Media`] (RTP, players, DTMF, recorder,
//! `wait_for_*` helpers); [`analysis`] measures recordings.

pub mod agent;
pub mod analysis;
pub mod call;
pub mod config;
mod dialog;
pub mod error;
pub mod incoming;
pub mod media;
pub mod outgoing;
pub mod sip;
pub mod wav;
pub mod webrtc;

pub use agent::Agent;
pub use analysis::{min_db_over, pure_tone, ToneCondition, ToneMeasurement};
pub use call::{Call, EndReason};
pub use config::{AgentConfig, AnswerOptions, AutoAnswer, CallOptions, Codec, Transport};
pub use error::AgentError;
pub use incoming::IncomingCall;
pub use media::{DtmfOptions, DtmfSource, Media, Playback, PlaybackEnd, ReceivedDtmf};
pub use outgoing::OutgoingCall;
pub use sip::message::ResponseInfo;
pub use sip::sdp::{AudioDescription, Direction};
pub use webrtc::{WebRtcCall, WebRtcOffer, WebRtcPeer};
