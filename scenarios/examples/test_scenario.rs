//! `switchboard test-scenario` without the engine: runs a scenario against a
//! simulated call and prints the timeline.
//!
//! `cargo run -p switchboard-scenarios --example test_scenario -- examples/ivr/ivr.js --dtmf 1`

use clap::Parser;
use switchboard_scenarios::sim::{run_test_scenario, TestScenarioArgs};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TestScenarioArgs,
}

fn main() {
    let cli = Cli::parse();
    match run_test_scenario(&cli.args) {
        Ok(timeline) => print!("{timeline}"),
        Err(error) => {
            eprintln!("test-scenario: {error}");
            std::process::exit(1);
        }
    }
}
