//! What starting a scenario instance costs (design target: <= 0.3 ms and
//! <= 256 KB per call). `cargo bench -p switchboard-scenarios` on a quiet
//! machine; prints the figures.
//!
//! - start: `ScenarioInstance::start` (runtime + context + module from
//!   bytecode + handlers found);
//! - start + call: start, hand over a call, until `onCall` has answered it;
//! - memory: the QuickJS heap of an instance whose call waits in
//!   `collectDigits`, and the process's resident memory per such instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_scenarios::host::{CallControl, CallState};
use switchboard_scenarios::sim::{SimCall, SimHost};
use switchboard_scenarios::{
    CallContext, InstanceContext, Limits, Scenario, ScenarioHost, ScenarioInstance,
};

const IVR: &str = include_str!("../../examples/ivr/ivr.js");
const SPEECH: &str = include_str!("../../examples/ivr/speech.js");
const ROUNDS: usize = 2000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let scenario = Scenario::compile_with_modules("ivr.js", IVR, [("speech", SPEECH)])?;
    let sim = SimHost::new();
    let host: Arc<dyn ScenarioHost> = sim.clone();
    println!(
        "scenario: examples/ivr (bytecode {} bytes, modules {:?})",
        scenario.bytecode_len(),
        scenario.imported_modules()
    );

    // Breakdown: an empty QuickJS runtime and full context.
    let mut times = Vec::with_capacity(ROUNDS);
    let mut keep = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let rt = rquickjs::AsyncRuntime::new()?;
        let cx = rquickjs::AsyncContext::full(&rt).await?;
        times.push(started.elapsed());
        keep.push((rt, cx));
    }
    report("bare runtime + full context", &mut times);
    drop(keep);

    // Warm up allocator and caches.
    let mut keep = Vec::new();
    for _ in 0..200 {
        keep.push(start(&scenario, &host).await?);
    }
    drop(keep);

    let mut instances = Vec::with_capacity(ROUNDS);
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let instance = start(&scenario, &host).await?;
        times.push(started.elapsed());
        instances.push(instance);
    }
    report("start", &mut times);
    drop(instances);

    let rss_before = resident_bytes();
    let mut instances = Vec::with_capacity(ROUNDS);
    let mut calls = Vec::with_capacity(ROUNDS);
    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let call = SimCall::builder(&format!("call-{round}")).build();
        let started = Instant::now();
        let instance = start(&scenario, &host).await?;
        instance.on_call(call.clone(), call_ctx())?;
        while call.state() != CallState::Answered {
            tokio::task::yield_now().await;
        }
        times.push(started.elapsed());
        instances.push(instance);
        calls.push(call);
    }
    report("start + call answered", &mut times);
    // Let every call reach its collectDigits (the greeting takes 1.8 s).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rss_after = resident_bytes();
    let mut heaps = Vec::with_capacity(ROUNDS);
    for instance in &instances {
        if let Some(usage) = instance.memory_usage().await {
            heaps.push(usage.allocated_bytes);
        }
    }
    heaps.sort_unstable();
    println!(
        "memory per instance with a call in progress: QuickJS heap median {:.1} KB (max {:.1} KB); \
         process resident {:.1} KB per instance over {ROUNDS}",
        heaps[heaps.len() / 2] as f64 / 1024.0,
        heaps[heaps.len() - 1] as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / ROUNDS as f64 / 1024.0,
    );
    for call in &calls {
        call.remote_hangup();
    }
    for instance in &instances {
        instance.closed().await;
    }
    let _ = sim;
    Ok(())
}

async fn start(
    scenario: &Scenario,
    host: &Arc<dyn ScenarioHost>,
) -> Result<ScenarioInstance, Box<dyn std::error::Error>> {
    let ctx = InstanceContext {
        app: "bench".into(),
        rule: "menu".into(),
        destination: "1000".into(),
        custom_data: serde_json::Value::Null,
    };
    Ok(ScenarioInstance::start(scenario, ctx, host.clone(), Limits::default(), None).await?)
}

fn call_ctx() -> CallContext {
    CallContext {
        rule: "menu".into(),
        destination: "1000".into(),
        custom_data: serde_json::Value::Null,
    }
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{what} over {} instances: min {:?}, median {:?}, p90 {:?}, p99 {:?}",
        times.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

/// Resident set size of this process (Linux), 0 elsewhere.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
