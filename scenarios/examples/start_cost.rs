//! Rough cost of starting a scenario instance (the design target is
//! <= 0.3 ms). Run on a quiet machine:
//! `cargo run --release -p switchboard-scenarios --example start_cost`.

use std::sync::Arc;
use std::time::Instant;

use switchboard_scenarios::sim::SimHost;
use switchboard_scenarios::{InstanceContext, Limits, Scenario, ScenarioHost, ScenarioInstance};

const IVR: &str = r#"
export default {
  async onCall(call, ctx) {
    await call.answer();
    const { digits } = await call.collectDigits({ prompt: 'Your room number?', max: 6 });
    if (digits.length === 0) { await call.hangup(); return; }
    await call.routeTo(`conf_${digits}`, { customData: { code: digits } });
  },
};
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scenario = Scenario::compile("ivr.js", IVR)?;
    let host: Arc<dyn ScenarioHost> = SimHost::new();
    let ctx = InstanceContext {
        app: "bench".into(),
        rule: "all".into(),
        destination: "1000".into(),
        custom_data: serde_json::Value::Null,
    };
    let rounds = 1000;
    let mut instances = Vec::with_capacity(rounds);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let instance = ScenarioInstance::start(
            &scenario,
            ctx.clone(),
            host.clone(),
            Limits::default(),
            None,
        )
        .await?;
        times.push(started.elapsed());
        instances.push(instance);
    }
    times.sort();
    println!(
        "instance start over {rounds} instances: min {:?}, median {:?}, p90 {:?}",
        times[0],
        times[rounds / 2],
        times[rounds * 9 / 10]
    );
    Ok(())
}
