//! The switchboard engine: configuration, applications, TTS, call
//! orchestration, storage, the control plane, the management HTTP API and
//! the CLI client. `main.rs` is the command line.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod engine;
pub mod fetch;
pub mod http;
pub mod registry;
pub mod server;
pub mod sources;
pub mod storage;
pub mod tls;
pub mod tts;
pub mod web;

pub use config::Config;
pub use engine::Engine;
pub use server::Server;
