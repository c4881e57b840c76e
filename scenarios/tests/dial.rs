//! Outbound calls: dial (answered, failed, timed out), bridge, the dialed
//! call belonging to the instance, and onStart.

mod common;

use std::sync::Arc;

use common::*;
use switchboard_scenarios::host::{CallControl, CallState};
use switchboard_scenarios::sim::{HangupSide, SimCall, SimDial, SimEvent, SimHost};

const TRANSFER: &str = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.say('Connecting you');
    let agent;
    try {
      agent = await call.dial('sip:agent@10.0.0.1:5070', { from: 'sip:ivr@example.com', headers: { 'X-Caller': call.from }, timeoutMs: 20000 });
    } catch (e) {
      console.log(`dial failed ${e.name} ${e.code} ${e.reason}`);
      await call.say('Nobody is available');
      await call.hangup();
      return;
    }
    console.log(`agent ${agent.id} ${agent.direction} ${agent.state} ${agent.to}`);
    agent.on('hangup', (e) => console.log(`agent hung up ${e.reason}`));
    await call.bridge(agent);
    console.log('bridged');
  },
};
"#;

async fn transfer(
    dial: SimDial,
    caller: impl FnOnce(
        switchboard_scenarios::sim::SimCallBuilder,
    ) -> switchboard_scenarios::sim::SimCallBuilder,
) -> (Arc<SimHost>, Arc<SimCall>) {
    let scenario = compile("transfer.js", TRANSFER);
    let host = SimHost::new();
    host.on_dial("sip:agent@*", dial);
    let call = caller(SimCall::builder("caller").from("sip:alice@example.com")).build();
    let instance = host.start_call(&scenario, call.clone()).await.unwrap();
    closed(&instance).await;
    (host, call)
}

#[tokio::test(start_paused = true)]
async fn a_dialed_call_is_bridged_and_hung_up_when_the_caller_leaves() {
    let (host, caller) = transfer(SimDial::answer_after(secs(3.0)), |c| {
        c.hangup_at(secs(20.0))
    })
    .await;
    assert_eq!(
        line(&host, "agent").message,
        "agent dial-1 outbound answered sip:agent@10.0.0.1:5070"
    );
    let agent = host.call("dial-1").unwrap();
    assert!(caller.saw(|e| *e
        == SimEvent::Bridged {
            with: "dial-1".into()
        }));
    // The caller left: the agent's call has nothing more to do.
    assert_eq!(agent.state(), CallState::Ended);
    assert!(agent.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
    assert!(agent.elapsed() >= secs(16.0));
    let timeline = host.timeline();
    assert!(timeline.saw(|e| e.source == "host"
        && e.event
            == SimEvent::SentHeaders {
                headers: vec![("X-Caller".into(), "sip:alice@example.com".into())]
            }));
    assert!(!timeline
        .lines_containing("dial sip:agent@10.0.0.1:5070 answered as dial-1")
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn when_the_dialed_side_hangs_up_the_caller_is_hung_up() {
    let dial = SimDial::answer_after(secs(1.0)).callee(|c| c.hangup_at(secs(5.0)));
    let (host, caller) = transfer(dial, |c| c).await;
    assert_eq!(
        line(&host, "agent hung up").message,
        "agent hung up remote-bye"
    );
    assert!(caller.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}

#[tokio::test(start_paused = true)]
async fn a_failed_dial_rejects_with_the_sip_status() {
    let (host, caller) = transfer(SimDial::fail(486, "Busy Here", secs(2.0)), |c| c).await;
    assert_eq!(
        line(&host, "dial failed").message,
        "dial failed DialError 486 Busy Here"
    );
    assert_eq!(caller.said(), vec!["Connecting you", "Nobody is available"]);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_dial_times_out_with_408() {
    let (host, _caller) = transfer(SimDial::no_answer(), |c| c).await;
    let failed = line(&host, "dial failed");
    assert_eq!(failed.message, "dial failed DialError 408 Request Timeout");
    // timeoutMs was 20 s, after 1 s of "Connecting you".
    assert!(
        (20.9..21.1).contains(&failed.at.as_secs_f64()),
        "{:?}",
        failed.at
    );
}

#[tokio::test(start_paused = true)]
async fn the_caller_hanging_up_while_dialing_leaves_no_call_behind() {
    let (host, _caller) =
        transfer(SimDial::answer_after(secs(5.0)), |c| c.hangup_at(secs(2.0))).await;
    // The dial still completed; its call went to the instance, which had
    // nothing to do with it and hung it up.
    let agent = host.call("dial-1").unwrap();
    assert_eq!(agent.state(), CallState::Ended);
}

#[tokio::test(start_paused = true)]
async fn bad_dial_arguments_throw() {
    let source = r#"
export default {
  async onCall(call) {
    for (const t of [
      () => call.dial('http://x'), () => call.dial(''), () => call.dial(42),
      () => call.dial('sip:a@b', { timeoutMs: 0 }), () => call.dial('sip:a@b', { headers: { Via: 'x' } }),
      () => call.bridge({}), () => call.bridge(call),
    ]) {
      try { t(); console.log('accepted'); } catch (e) { console.log(`caught ${e.name}`); }
    }
    await call.reject(480);
  },
};
"#;
    let (host, _call) = run(source, |c| c).await;
    assert_eq!(
        host.logs_containing("caught TypeError").len(),
        7,
        "{:#?}",
        messages(&host.logs())
    );
}

#[tokio::test(start_paused = true)]
async fn on_start_dials_out_with_custom_data() {
    let source = r#"
export default {
  async onStart(ctx) {
    console.log(`start ${ctx.customData.to} ${ctx.rule}`);
    const call = await ctx.dial(ctx.customData.to);
    await call.say(`Your code is ${ctx.customData.code}`);
    await call.sendDigits('1');
    await call.hangup({ headers: { 'X-Delivered': 'yes' } });
    console.log('notified');
  },
};
"#;
    let scenario = compile("notify.js", source);
    let host = SimHost::new();
    let data = serde_json::json!({ "to": "sip:bob@example.com", "code": 1234 });
    let instance = host.start_scenario(&scenario, data).await.unwrap();
    closed(&instance).await;
    assert_eq!(
        line(&host, "start").message,
        "start sip:bob@example.com start"
    );
    assert!(!host.logs_containing("notified").is_empty());
    let bob = host.call("dial-1").unwrap();
    assert_eq!(bob.said(), vec!["Your code is 1234"]);
    assert!(bob.saw(|e| *e == SimEvent::SentDigits { digits: "1".into() }));
    assert!(bob.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}

#[tokio::test(start_paused = true)]
async fn on_start_ends_the_instance_once_settled_without_calls() {
    let source = r#"
export default {
  async onStart(ctx) {
    await new Promise((r) => setTimeout(r, 1000));
    console.log('done waiting');
  },
};
"#;
    let scenario = compile("wait.js", source);
    let host = SimHost::new();
    let instance = host
        .start_scenario(&scenario, serde_json::Value::Null)
        .await
        .unwrap();
    closed(&instance).await;
    assert_eq!(line(&host, "done waiting").at, secs(1.0));
    assert!(
        instance.run_on_start().is_err(),
        "a closed instance refuses"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_on_start_hangs_up_its_dialed_calls() {
    let source = r#"
export default {
  async onStart(ctx) {
    const call = await ctx.dial('sip:bob@example.com');
    await call.say('one moment');
    throw new Error('the notification service is down');
  },
};
"#;
    let scenario = compile("broken.js", source);
    let host = SimHost::new();
    let instance = host
        .start_scenario(&scenario, serde_json::Value::Null)
        .await
        .unwrap();
    closed(&instance).await;
    let error = line(&host, "scenario broken.js failed");
    assert!(
        error
            .message
            .contains("onStart failed: Error: the notification service is down"),
        "{}",
        error.message
    );
    assert_eq!(error.call_id.as_deref(), Some("dial-1"));
    let bob = host.call("dial-1").unwrap();
    assert!(bob.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}

#[tokio::test(start_paused = true)]
async fn a_scenario_without_on_start_fails_when_started() {
    let scenario = compile("no_start.js", "export default { async onCall(call) {} };");
    let host = SimHost::new();
    let instance = host
        .start_scenario(&scenario, serde_json::Value::Null)
        .await
        .unwrap();
    closed(&instance).await;
    assert!(!host
        .logs_containing("the scenario has no onStart handler")
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn unbridge_separates_the_calls() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const other = await call.dial('sip:b@example.com');
    await call.bridge(other);
    await new Promise((r) => setTimeout(r, 2000));
    await call.unbridge();
    await other.hangup();
    await call.say('back with me');
    await call.hangup();
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    assert!(call.saw(|e| *e
        == SimEvent::Unbridged {
            with: "dial-1".into()
        }));
    assert_eq!(call.said(), vec!["back with me"]);
    assert!(host.call("dial-1").unwrap().saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}
