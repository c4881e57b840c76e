//! The Simulation API and the test-scenario arguments.

mod common;

use std::path::PathBuf;

use clap::Parser;
use common::*;
use switchboard_scenarios::sim::{
    run_test_scenario, SimCall, SimDial, SimEvent, Simulation, TestScenarioArgs,
};

/// A fresh application directory with `files`.
fn app_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

const APP_TOML: &str = r#"
name = "shop"

[[rules]]
name = "orders"
pattern = "orders_[0-9]+"
scenario = "orders"

[[rules]]
name = "front"
pattern = ".*"
scenario = "front"
"#;

const FRONT: &str = r#"
import { greeting } from './words.js';
export default {
  async onCall(call, ctx) {
    await call.answer();
    await call.say(greeting);
    const { digits } = await call.collectDigits({ prompt: 'Order number?', max: 3 });
    await call.routeTo(`orders_${digits}`, { customData: { order: digits } });
  },
};
"#;

const ORDERS: &str = r#"
import { greeting } from './words.js';
export default {
  async onCall(call, ctx) {
    const r = await fetch(`https://shop.example.com/orders/${ctx.customData.order}`);
    const order = await r.json();
    await call.say(`${greeting} Order ${ctx.customData.order} is ${order.status}.`);
    await call.hangup();
  },
};
"#;

#[tokio::test(start_paused = true)]
async fn an_application_directory_runs_with_its_modules_and_rules() {
    let dir = app_dir(
        "shop",
        &[
            ("app.toml", APP_TOML),
            ("front.js", FRONT),
            ("orders.js", ORDERS),
            (
                "words.js",
                "export const greeting = 'Welcome to the shop.';",
            ),
        ],
    );
    let report = Simulation::from_file(&dir.join("front.js"))
        .unwrap()
        .respond(
            "https://shop.example.com/orders/42",
            200,
            r#"{"status":"shipped"}"#,
        )
        .call(SimCall::builder("c").dtmf_on_prompt("42#"))
        .run()
        .await;
    assert!(!report.failed() && !report.timed_out, "{report}");
    let call = report.call("c").unwrap();
    assert_eq!(
        call.said(),
        vec![
            "Welcome to the shop.",
            "Order number?",
            "Welcome to the shop. Order 42 is shipped."
        ]
    );
    let printed = report.to_string();
    assert!(printed.contains("routed to \"orders_42\""), "{printed}");
    assert!(
        printed.contains("fetch GET https://shop.example.com/orders/42: 200"),
        "{printed}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_errors_name_the_file() {
    let dir = app_dir(
        "broken",
        &[
            ("app.toml", "name = \"x\"\n[[rules]]\nname = \"all\"\npattern = \".*\"\nscenario = \"missing\"\n"),
            ("main.js", "import { x } from './helper.js';\nexport default {};"),
            ("helper.js", "export const x = ;\n"),
        ],
    );
    let error = Simulation::from_file(&dir.join("main.js")).err().unwrap();
    assert!(error.to_string().starts_with("helper.js:1:"), "{error}");
    std::fs::write(dir.join("helper.js"), "export const x = 1;\n").unwrap();
    let error = Simulation::from_file(&dir.join("main.js")).err().unwrap();
    assert!(error.to_string().contains("missing"), "{error}");
    let error = Simulation::from_file(&dir.join("nope.js")).err().unwrap();
    assert!(error.to_string().contains("cannot read"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn on_start_with_custom_data_and_dial_scripts() {
    let source = r#"
export default {
  async onStart(ctx) {
    for (const to of ctx.customData.numbers) {
      try {
        const call = await ctx.dial(`sip:${to}@example.com`, { timeoutMs: 10000 });
        await call.say('Your order has shipped.');
        await call.hangup();
      } catch (e) {
        console.log(`could not reach ${to}: ${e.code}`);
      }
    }
  },
};
"#;
    let report = Simulation::from_source("notify.js", source)
        .unwrap()
        .custom_data(serde_json::json!({ "numbers": ["alice", "bob"] }))
        .dial("sip:bob@*", SimDial::fail(486, "Busy Here", secs(2.0)))
        .on_start()
        .run()
        .await;
    assert_eq!(
        report.call("dial-1").unwrap().said(),
        vec!["Your order has shipped."]
    );
    assert_eq!(report.logs_containing("could not reach bob: 486").len(), 1);
    assert!(!report.failed());
}

#[tokio::test(start_paused = true)]
async fn failures_and_time_limits_are_reported() {
    let report = Simulation::from_source(
        "bad.js",
        "export default { async onCall(call) { await call.answer(); null.x; } };",
    )
    .unwrap()
    .call(SimCall::builder("c"))
    .run()
    .await;
    assert!(report.failed(), "{report}");

    let report = Simulation::from_source(
        "forever.js",
        "export default { async onCall(call) { await call.answer(); await call.play('m.wav', { loop: true }); } };",
    )
    .unwrap()
    .max_duration(secs(100.0))
    .call(SimCall::builder("c"))
    .run()
    .await;
    assert!(report.timed_out);
    let hung_up = report
        .timeline
        .entries
        .iter()
        .find(|e| matches!(e.event, SimEvent::HungUp { .. }))
        .unwrap();
    assert_eq!(hung_up.at, secs(100.0));
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TestScenarioArgs,
}

#[test]
fn the_arguments_parse_like_the_command_line() {
    let cli = Cli::try_parse_from([
        "test-scenario",
        "examples/ivr/ivr.js",
        "--dtmf",
        "12#",
        "--dtmf",
        "3",
        "--dtmf-at",
        "5s:9",
        "--hangup-at",
        "1.5m",
        "--custom-data",
        r#"{"a":1}"#,
        "--dial-fail",
        "486",
        "--fetch",
        "https://x/=200:ok",
        "--header",
        "X-Room: 7",
    ])
    .unwrap();
    let args = cli.args;
    assert_eq!(args.dtmf, vec!["12#", "3"]);
    assert_eq!(args.dtmf_at, vec![(secs(5.0), "9".to_string())]);
    assert_eq!(args.hangup_at, Some(secs(90.0)));
    assert_eq!(args.custom_data, Some(serde_json::json!({"a": 1})));
    assert_eq!(args.dial_fail, Some(486));
    assert_eq!(
        args.fetch,
        vec![("https://x/".to_string(), 200, "ok".to_string())]
    );
    assert_eq!(args.headers, vec![("X-Room".to_string(), "7".to_string())]);
    assert_eq!(args.max_duration, secs(300.0));
    for bad in [
        vec!["t", "f.js", "--dial-fail", "486", "--dial-no-answer"],
        vec!["t", "f.js", "--dtmf-at", "5s"],
        vec!["t", "f.js", "--custom-data", "{nope"],
        vec!["t", "f.js", "--dial-fail", "200"],
    ] {
        assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn run_test_scenario_reports_load_errors() {
    let args = TestScenarioArgs::new(PathBuf::from("/nonexistent/x.js"));
    let error = run_test_scenario(&args).unwrap_err();
    assert!(error.to_string().contains("cannot read"), "{error}");
}
