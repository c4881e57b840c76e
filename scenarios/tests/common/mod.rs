//! Helpers shared by the scenario tests (all run on the simulator with
//! paused tokio time, so prompts and timeouts take no real time).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_scenarios::sim::{SimCall, SimHost, SimLog};
use switchboard_scenarios::{Limits, Scenario, ScenarioInstance};

pub fn compile(name: &str, source: &str) -> Scenario {
    Scenario::compile(name, source).unwrap_or_else(|e| panic!("{e}"))
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Waits for the instance to end, with a generous (virtual) timeout.
pub async fn closed(instance: &ScenarioInstance) {
    tokio::time::timeout(Duration::from_secs(600), instance.closed())
        .await
        .expect("the instance did not end");
}

/// Runs `source` for a fresh call built by `build`, until the instance ends.
pub async fn run(
    source: &str,
    build: impl FnOnce(
        switchboard_scenarios::sim::SimCallBuilder,
    ) -> switchboard_scenarios::sim::SimCallBuilder,
) -> (Arc<SimHost>, Arc<SimCall>) {
    run_with(Limits::default(), source, build).await
}

pub async fn run_with(
    limits: Limits,
    source: &str,
    build: impl FnOnce(
        switchboard_scenarios::sim::SimCallBuilder,
    ) -> switchboard_scenarios::sim::SimCallBuilder,
) -> (Arc<SimHost>, Arc<SimCall>) {
    let scenario = compile("test.js", source);
    let host = SimHost::with_limits(limits);
    let call = build(SimCall::builder("call-1")).build();
    let instance = host.start_call(&scenario, call.clone()).await.unwrap();
    closed(&instance).await;
    (host, call)
}

/// Waits until every instance the host started (including ones started by
/// routes meanwhile) has ended.
pub async fn all_closed(host: &SimHost) {
    loop {
        let instances = host.instances();
        for instance in &instances {
            closed(instance).await;
        }
        if host.instances().len() == instances.len() {
            return;
        }
    }
}

/// The messages of the log, in order.
pub fn messages(logs: &[SimLog]) -> Vec<String> {
    logs.iter().map(|l| l.message.clone()).collect()
}

/// The first log line starting with `prefix` (panics with the whole log if none).
pub fn line(host: &SimHost, prefix: &str) -> SimLog {
    let logs = host.logs();
    logs.iter()
        .find(|l| l.message.starts_with(prefix))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no log line starting with {prefix:?} in {:#?}",
                messages(&logs)
            )
        })
}
