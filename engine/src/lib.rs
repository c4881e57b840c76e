//! The switchboard engine: configuration, applications, TTS, call
//! orchestration and the HTTP server. `main.rs` is the command line.

pub mod app;
pub mod config;
pub mod engine;
pub mod fetch;
pub mod http;
pub mod registry;
pub mod sources;
pub mod tts;

pub use config::Config;
pub use engine::Engine;
