//! A failing scenario ends its own calls cleanly (500 before answer, BYE
//! after) and logs why; other instances keep working.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchboard_scenarios::host::{CallControl, CallState, LogLevel};
use switchboard_scenarios::sim::{HangupSide, SimCall, SimEvent, SimHost};
use switchboard_scenarios::{Limits, Scenario, ScenarioError};

/// A scenario that keeps working for a while: it must not notice the failure.
const STEADY: &str = r#"
export default {
  async onCall(call) {
    await call.answer();
    const r = await call.collectDigits({ prompt: 'Enter your code', max: 3 });
    await call.say(`code ${r.digits}`);
    console.log(`steady got ${r.digits} ${r.reason}`);
    await call.hangup();
  },
};
"#;

struct Outcome {
    host: Arc<SimHost>,
    call: Arc<SimCall>,
    steady_host: Arc<SimHost>,
    steady: Arc<SimCall>,
}

/// Runs `source` (failing) next to `STEADY` on another call; both to the end.
async fn run_failing(limits: Limits, source: &str) -> Outcome {
    let bad = compile("bad.js", source);
    let steady_scenario = compile("steady.js", STEADY);
    let steady_host = SimHost::new();
    let steady = SimCall::builder("steady").dtmf(secs(1.0), "123").build();
    let steady_instance = steady_host
        .start_call(&steady_scenario, steady.clone())
        .await
        .unwrap();
    let host = SimHost::with_limits(limits);
    let call = SimCall::builder("bad").build();
    match host.start_call(&bad, call.clone()).await {
        Ok(instance) => closed(&instance).await,
        // Failing while the module evaluates is reported by `start`.
        Err(ScenarioError::Runtime(_)) => {}
        Err(e) => panic!("{e}"),
    }
    closed(&steady_instance).await;
    Outcome {
        host,
        call,
        steady_host,
        steady,
    }
}

fn assert_steady_unaffected(outcome: &Outcome) {
    assert_eq!(
        line(&outcome.steady_host, "steady got").message,
        "steady got 123 max"
    );
    assert_eq!(outcome.steady.said(), vec!["Enter your code", "code 123"]);
}

fn assert_rejected_500(outcome: &Outcome) {
    let call = &outcome.call;
    assert!(
        call.saw(|e| matches!(e, SimEvent::Rejected { code: 500, .. })),
        "{:#?}",
        call.timeline()
    );
    assert_eq!(call.state(), CallState::Ended);
}

fn assert_hung_up(outcome: &Outcome) {
    let call = &outcome.call;
    assert!(call.saw(|e| *e == SimEvent::Answered));
    assert!(
        call.saw(|e| *e
            == SimEvent::HungUp {
                by: HangupSide::Local
            }),
        "{:#?}",
        call.timeline()
    );
}

/// The error line for the failed call, containing all of `parts`.
fn assert_error_logged(outcome: &Outcome, parts: &[&str]) {
    let logs = outcome.host.logs();
    let error = logs
        .iter()
        .find(|l| l.level == LogLevel::Error && l.message.contains("failed"))
        .unwrap_or_else(|| panic!("no error logged: {:#?}", messages(&logs)));
    assert_eq!(error.call_id.as_deref(), Some("bad"));
    for part in parts {
        assert!(
            error.message.contains(part),
            "{:?} lacks {part:?}",
            error.message
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_throw_before_answering_rejects_with_500() {
    let source = "export default {\n  onCall(call) {\n    throw new Error('boom');\n  },\n};\n";
    let outcome = run_failing(Limits::default(), source).await;
    assert_rejected_500(&outcome);
    assert_error_logged(&outcome, &["onCall threw", "Error: boom", "bad.js:3"]);
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_handler_after_answering_hangs_up() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.say('hello');
    null.explode();
  },
};
"#;
    let outcome = run_failing(Limits::default(), source).await;
    assert_hung_up(&outcome);
    assert_error_logged(&outcome, &["onCall failed", "TypeError", "bad.js:6"]);
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn an_unhandled_rejection_ends_the_instance() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    Promise.reject(new Error('nobody listens'));
    await call.say('this is never finished');
  },
};
"#;
    let outcome = run_failing(Limits::default(), source).await;
    assert_hung_up(&outcome);
    assert_error_logged(
        &outcome,
        &["unhandled promise rejection", "nobody listens", "bad.js:5"],
    );
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn an_exception_in_a_listener_ends_the_instance() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    call.on('dtmf', () => { throw new RangeError('bad key'); });
    await call.collectDigits({ max: 5, firstDigitTimeoutMs: 60000 });
  },
};
"#;
    let bad = compile("bad.js", source);
    let host = SimHost::new();
    let call = SimCall::builder("bad").dtmf(secs(1.0), "1").build();
    let instance = host.start_call(&bad, call.clone()).await.unwrap();
    closed(&instance).await;
    assert!(call.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
    assert!(!host.logs_containing("RangeError: bad key").is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_endless_loop_is_stopped_by_the_cpu_limit() {
    let source = "export default {\n  onCall(call) {\n    while (true) {}\n  },\n};\n";
    let limits = Limits {
        cpu_per_callback: Duration::from_millis(100),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let outcome = run_failing(limits, source).await;
    // Real time: the loop ran ~100 ms, not forever (generous for a busy CI).
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_rejected_500(&outcome);
    assert_error_logged(&outcome, &["CPU limit exceeded", "at onCall (bad.js:"]);
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn an_endless_loop_after_answering_hangs_up() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    // Even a catch-all cannot keep an interrupted loop alive.
    try { for (;;) {} } catch (e) { console.log('caught', e); }
    console.log('still running');
  },
};
"#;
    let limits = Limits {
        cpu_per_callback: Duration::from_millis(100),
        ..Limits::default()
    };
    let outcome = run_failing(limits, source).await;
    assert_hung_up(&outcome);
    assert!(outcome.host.logs_containing("still running").is_empty());
    assert_error_logged(&outcome, &["CPU limit exceeded", "at onCall (bad.js:"]);
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn a_memory_blow_up_ends_the_instance() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const hoard = [];
    for (;;) hoard.push(new Array(100000).fill(7));
  },
};
"#;
    let limits = Limits {
        memory_bytes: 8 * 1024 * 1024,
        ..Limits::default()
    };
    let outcome = run_failing(limits, source).await;
    assert_hung_up(&outcome);
    assert_error_logged(&outcome, &["memory limit exceeded", "out of memory"]);
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn a_module_that_throws_does_not_start() {
    let source = "const x = 1;\nthrow new Error('broken module');\nexport default {};\n";
    let outcome = run_failing(Limits::default(), source).await;
    // The engine never got an instance, so the sim host could not hand it the call.
    assert_eq!(outcome.call.state(), CallState::Incoming);
    let logs = outcome.host.logs();
    assert!(
        logs.iter()
            .any(|l| l.level == LogLevel::Error && l.message.contains("broken module")),
        "{:#?}",
        messages(&logs)
    );
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn missing_handlers_are_reported() {
    let host = SimHost::new();
    let scenario = compile("none.js", "export const x = 1;");
    let call = SimCall::builder("c").build();
    let err = host.start_call(&scenario, call).await.unwrap_err();
    assert!(err.to_string().contains("no default export"), "{err}");

    let scenario = compile("nocall.js", "export default { onStart() {} };");
    let call = SimCall::builder("c2").build();
    let instance = host.start_call(&scenario, call.clone()).await.unwrap();
    closed(&instance).await;
    assert!(call.saw(|e| matches!(e, SimEvent::Rejected { code: 500, .. })));
    assert!(!host.logs_containing("no onCall handler").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_closed_instance_refuses_calls() {
    let host = SimHost::new();
    let scenario = compile(
        "t.js",
        "export default { async onCall(call) { await call.reject(603); } };",
    );
    let call = SimCall::builder("c").build();
    let instance = host.start_call(&scenario, call).await.unwrap();
    closed(&instance).await;
    assert!(instance.is_closed());
    let another: Arc<dyn CallControl> = SimCall::builder("d").build();
    let ctx = switchboard_scenarios::CallContext {
        rule: "r".into(),
        destination: "d".into(),
        custom_data: serde_json::Value::Null,
    };
    assert!(matches!(
        instance.on_call(another, ctx),
        Err(ScenarioError::Closed)
    ));
}

#[tokio::test(start_paused = true)]
async fn compile_errors_carry_line_and_column() {
    let err = Scenario::compile(
        "broken.js",
        "export default {\n  onCall(call) {\n    call.answer(;\n  }\n};\n",
    )
    .unwrap_err();
    assert_eq!(err.name, "broken.js");
    assert_eq!(err.line, 3, "{err}");
    assert!(err.column > 0, "{err}");
}

#[tokio::test(start_paused = true)]
async fn too_many_timers_end_the_instance_when_not_caught() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    for (let i = 0; i < 100; i++) setInterval(() => {}, 1000);
  },
};
"#;
    let limits = Limits {
        max_timers: 10,
        ..Limits::default()
    };
    let outcome = run_failing(limits, source).await;
    assert_hung_up(&outcome);
    assert_error_logged(
        &outcome,
        &[
            "onCall failed",
            "RangeError: setInterval: too many timers (the limit is 10)",
        ],
    );
    assert_steady_unaffected(&outcome);
}

#[tokio::test(start_paused = true)]
async fn the_wall_time_limit_ends_a_call_and_the_instance_goes_on() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.play('music.wav', { loop: true });
  },
};
"#;
    let limits = Limits {
        max_call_duration: Some(Duration::from_secs(5)),
        ..Limits::default()
    };
    let outcome = run_failing(limits.clone(), source).await;
    assert_hung_up(&outcome);
    let ended = outcome
        .call
        .timeline()
        .into_iter()
        .find(|e| matches!(e.event, SimEvent::HungUp { .. }))
        .unwrap();
    assert_eq!(ended.at, secs(5.0));
    assert_eq!(
        line(&outcome.host, "wall-time limit exceeded")
            .call_id
            .as_deref(),
        Some("bad")
    );
    assert_steady_unaffected(&outcome);

    // In a conference instance each call has its own budget; the room goes on.
    let room = r#"
let conf;
export default {
  onConference(c) { conf = c; },
  async onCall(call) { await call.answer(); await conf.add(call); },
};
"#;
    let host = SimHost::with_limits(limits);
    host.add_rule("room", "conf_*", &compile("room.js", room), true);
    let a = SimCall::builder("a").build();
    host.dispatch(a.clone(), "conf_1").await.unwrap();
    tokio::time::sleep(secs(3.0)).await;
    let b = SimCall::builder("b").build();
    host.dispatch(b.clone(), "conf_1").await.unwrap();
    all_closed(&host).await;
    assert_eq!(host.instances().len(), 1);
    let hung_up_at = |call: &SimCall| {
        call.timeline()
            .into_iter()
            .find(|e| matches!(e.event, SimEvent::HungUp { .. }))
            .map(|e| e.at)
    };
    assert_eq!(hung_up_at(&a), Some(secs(5.0)));
    assert_eq!(
        hung_up_at(&b),
        Some(secs(5.0)),
        "b's budget counts from its arrival"
    );
}
