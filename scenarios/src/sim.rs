//! Simulation: in-memory calls, conferences and a host, so scenarios run
//! without SIP or media. Used by the tests and by `switchboard test-scenario`
//! (see [`Simulation`] and [`run_test_scenario`]).
//!
//! Time is tokio time: under `tokio::time::pause()` (or
//! `#[tokio::test(start_paused = true)]`) prompts, scripted digits and
//! timeouts take no real time and happen in a deterministic order.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use switchboard_scenarios::{sim::{SimCall, SimHost}, Scenario};
//! let scenario = Scenario::compile("ivr.js", "export default { async onCall(call) {
//!     await call.answer();
//!     const { digits } = await call.collectDigits({ prompt: 'Your code?', max: 4 });
//!     await call.say(`You typed ${digits}`);
//!     await call.hangup();
//! } }").unwrap();
//! let host = SimHost::new();
//! let call = SimCall::builder("call-1")
//!     .dtmf(Duration::from_secs(1), "1234")
//!     .build();
//! let instance = host.start_call(&scenario, call.clone()).await.unwrap();
//! instance.closed().await;
//! print!("{}", host.timeline());
//! # }
//! ```

mod call;
mod cli;
mod conference;
mod dial;
mod host;
mod media;
mod simulation;
mod timeline;

pub use call::{SimCall, SimCallBuilder, PROMPT_KEY_GAP};
pub use cli::{run_test_scenario, TestScenarioArgs, TestScenarioError};
pub use conference::{SimConference, TalkingProbe};
pub use dial::{reason_phrase, DialOutcome, SimDial, SimFetch};
pub use host::{SimHost, SimLog, SimRoute, SimRule};
pub use simulation::{SimError, SimReport, Simulation};
pub use timeline::{HangupSide, SimEntry, SimEvent, Timeline, TimelineEntry};
