//! Simulation: in-memory calls, conferences and a host, so scenarios run
//! without SIP or media. Used by the tests and by `switchboard test-scenario`.
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
//! for entry in call.timeline() {
//!     println!("{entry}");
//! }
//! # }
//! ```

mod call;
mod conference;
mod host;
mod timeline;

pub use call::{SimCall, SimCallBuilder};
pub use conference::SimConference;
pub use host::{SimHost, SimLog, SimRoute, SimRule};
pub use timeline::{HangupSide, SimEntry, SimEvent};
