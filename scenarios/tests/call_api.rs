//! The call API through the simulator: answer, say, collectDigits, events.

mod common;

use common::*;
use switchboard_scenarios::host::{CallControl, CallState, LogLevel};
use switchboard_scenarios::sim::{HangupSide, SimEvent};

const COLLECT_AND_REPORT: &str = r#"
export default {
  async onCall(call, ctx) {
    await call.answer();
    const r = await call.collectDigits(globalThis.OPTIONS);
    console.log(`result ${r.digits} ${r.reason}`);
    await call.hangup();
  },
};
"#;

fn collect_with(options: &str) -> String {
    format!("globalThis.OPTIONS = {options};\n{COLLECT_AND_REPORT}")
}

#[tokio::test(start_paused = true)]
async fn answer_say_collect_with_terminator() {
    let (host, call) = run(
        &collect_with("{ prompt: 'Enter your code', max: 6 }"),
        |c| c.dtmf(secs(3.0), "42#"),
    )
    .await;
    assert_eq!(line(&host, "result").message, "result 42 terminator");
    assert_eq!(call.said(), vec!["Enter your code"]);
    assert!(call.saw(|e| *e == SimEvent::Answered));
    assert!(call.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
    assert_eq!(call.state(), CallState::Ended);
    // The result line names the call: the instance owns exactly one.
    assert_eq!(line(&host, "result").call_id.as_deref(), Some("call-1"));
    assert_eq!(line(&host, "result").level, LogLevel::Info);
}

#[tokio::test(start_paused = true)]
async fn max_ends_and_extra_digits_stay_buffered() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const a = await call.collectDigits({ max: 4 });
    await call.say('thank you');
    const b = await call.collectDigits({ max: 1, firstDigitTimeoutMs: 100 });
    console.log(`first ${a.digits} ${a.reason}`);
    console.log(`second ${b.digits} ${b.reason}`);
    await call.hangup();
  },
};
"#;
    let (host, _call) = run(source, |c| c.dtmf_with_gap(secs(1.0), "12345", secs(0.1))).await;
    assert_eq!(line(&host, "first").message, "first 1234 max");
    // The fifth key came during "thank you", before the second collection:
    // it counts there, once.
    assert_eq!(line(&host, "second").message, "second 5 max");
}

#[tokio::test(start_paused = true)]
async fn first_digit_timeout_counts_from_the_end_of_the_prompt() {
    // "Code?" takes 5 * 65 ms = 325 ms to say.
    let (host, _call) = run(
        &collect_with("{ prompt: 'Code?', firstDigitTimeoutMs: 2000, interDigitTimeoutMs: 500 }"),
        |c| c,
    )
    .await;
    let result = line(&host, "result");
    assert_eq!(result.message, "result  timeout");
    let at = result.at.as_secs_f64();
    assert!(
        (2.3..2.4).contains(&at),
        "timed out at {at}s, expected 2.325s"
    );
}

#[tokio::test(start_paused = true)]
async fn inter_digit_timeout_after_a_digit() {
    let (host, _call) = run(
        &collect_with("{ firstDigitTimeoutMs: 5000, interDigitTimeoutMs: 500 }"),
        |c| c.dtmf(secs(1.0), "7"),
    )
    .await;
    let result = line(&host, "result");
    assert_eq!(result.message, "result 7 timeout");
    let at = result.at.as_secs_f64();
    assert!(
        (1.5..1.6).contains(&at),
        "timed out at {at}s, expected 1.5s"
    );
}

#[tokio::test(start_paused = true)]
async fn digits_typed_during_a_prompt_without_barge_in_are_kept() {
    // The prompt takes 40 * 65 ms = 2.6 s; keys at 0.5 s and 0.75 s.
    let (host, call) = run(
        &collect_with(
            "{ prompt: 'Please enter the number of your meeting', bargeIn: false, max: 8 }",
        ),
        |c| c.dtmf(secs(0.5), "12").dtmf(secs(3.0), "3#"),
    )
    .await;
    assert_eq!(line(&host, "result").message, "result 123 terminator");
    assert!(!call.saw(|e| matches!(e, SimEvent::Interrupted { .. })));
}

#[tokio::test(start_paused = true)]
async fn barge_in_interrupts_the_prompt() {
    let (host, call) = run(
        &collect_with("{ prompt: 'Please enter the number of your meeting', max: 3 }"),
        |c| c.dtmf(secs(0.5), "123"),
    )
    .await;
    assert_eq!(line(&host, "result").message, "result 123 max");
    assert!(call.saw(|e| matches!(e, SimEvent::Interrupted { .. })));
}

#[tokio::test(start_paused = true)]
async fn typed_ahead_digits_skip_a_barge_in_prompt() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const s = await call.say('Welcome to the service', { bargeIn: true });
    console.log(`say ${s.interrupted} ${s.reason}`);
    const r = await call.collectDigits({ prompt: 'Enter two digits', max: 2 });
    console.log(`result ${r.digits} ${r.reason}`);
    await call.hangup();
  },
};
"#;
    let (host, call) = run(source, |c| c.dtmf(secs(0.3), "98")).await;
    assert_eq!(line(&host, "say").message, "say true interrupted");
    assert_eq!(line(&host, "result").message, "result 98 max");
    assert_eq!(
        call.said(),
        vec!["Welcome to the service"],
        "the prompt was skipped"
    );
}

#[tokio::test(start_paused = true)]
async fn hangup_during_collect_resolves_with_hangup() {
    let source = r#"
export default {
  async onCall(call) {
    call.on('hangup', (e) => console.log(`hangup event ${e.reason}`));
    await call.answer();
    const r = await call.collectDigits({ max: 4, firstDigitTimeoutMs: 60000 });
    console.log(`result ${r.digits} ${r.reason}`);
  },
};
"#;
    let (host, call) = run(source, |c| c.dtmf(secs(1.0), "5").hangup_at(secs(2.0))).await;
    assert_eq!(line(&host, "result").message, "result 5 hangup");
    assert_eq!(
        line(&host, "hangup event").message,
        "hangup event remote-bye"
    );
    assert!(call.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Remote
        }));
}

#[tokio::test(start_paused = true)]
async fn hangup_ends_the_instance_even_while_javascript_waits() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    await new Promise((resolve) => setTimeout(resolve, 3600 * 1000));
    console.log('never');
  },
};
"#;
    let (host, call) = run(source, |c| c.hangup_at(secs(1.0))).await;
    assert!(host.logs_containing("never").is_empty());
    assert!(call.elapsed() < secs(2.0), "ended at {:?}", call.elapsed());
}

#[tokio::test(start_paused = true)]
async fn say_settles_on_hangup() {
    let source = r#"
export default {
  async onCall(call) {
    call.on('hangup', () => {});
    await call.answer();
    const s = await call.say('A very long announcement that the caller will not wait for');
    console.log(`say ${s.interrupted} ${s.reason}`);
  },
};
"#;
    let (host, _call) = run(source, |c| c.hangup_at(secs(1.0))).await;
    assert_eq!(line(&host, "say").message, "say true hangup");
}

#[tokio::test(start_paused = true)]
async fn dtmf_listeners_and_collect_each_see_every_digit_once() {
    let source = r#"
export default {
  async onCall(call) {
    const seen = [];
    call.on('dtmf', (e) => seen.push(e.digit + ':' + e.source));
    await call.answer();
    const a = await call.collectDigits({ max: 2 });
    const b = await call.collectDigits({ max: 2 });
    console.log(`collected ${a.digits} ${b.digits}`);
    console.log(`listener ${seen.join(',')}`);
    await call.hangup();
  },
};
"#;
    let (host, _call) = run(source, |c| c.dtmf(secs(1.0), "1234")).await;
    assert_eq!(line(&host, "collected").message, "collected 12 34");
    assert_eq!(
        line(&host, "listener").message,
        "listener 1:rfc4733,2:rfc4733,3:rfc4733,4:rfc4733"
    );
}

#[tokio::test(start_paused = true)]
async fn call_properties_headers_and_state() {
    let source = r#"
export default {
  async onCall(call, ctx) {
    console.log(`props ${call.id} ${call.from} ${call.transport} ${call.state}`);
    console.log(`headers ${call.headers['x-room']} ${call.header('X-ROOM')} ${call.header('nope')}`);
    console.log(`ctx ${ctx.app} ${ctx.rule}`);
    await call.answer();
    console.log(`state ${call.state}`);
    await call.hangup();
    console.log(`after ${call.state}`);
  },
};
"#;
    let (host, _call) = run(source, |c| {
        c.from("sip:alice@example.com").header("X-Room", "42")
    })
    .await;
    assert_eq!(
        line(&host, "props").message,
        "props call-1 sip:alice@example.com sim incoming"
    );
    assert_eq!(line(&host, "headers").message, "headers 42 42 undefined");
    assert_eq!(line(&host, "ctx").message, "ctx sim sim");
    assert_eq!(line(&host, "state").message, "state answered");
    assert_eq!(line(&host, "after").message, "after ended");
}

#[tokio::test(start_paused = true)]
async fn console_levels_reach_the_host_log() {
    let source = r#"
export default {
  async onCall(call) {
    console.log('plain', 1, { a: [1, 2] }, null, undefined);
    console.warn('careful');
    console.error(new Error('shown with its stack'));
    console.debug('details');
    await call.reject(486, 'Busy Here');
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    assert_eq!(
        line(&host, "plain").message,
        r#"plain 1 {"a":[1,2]} null undefined"#
    );
    assert_eq!(line(&host, "careful").level, LogLevel::Warn);
    let error = line(&host, "Error: shown");
    assert_eq!(error.level, LogLevel::Error);
    assert!(error.message.contains("test.js:6"), "{}", error.message);
    assert_eq!(line(&host, "details").level, LogLevel::Debug);
    assert!(call.saw(|e| matches!(e, SimEvent::Rejected { code: 486, .. })));
}

#[tokio::test(start_paused = true)]
async fn returning_without_answering_rejects_and_idle_answered_call_is_hung_up() {
    let (host, call) = run("export default { onCall(call) {} };", |c| c).await;
    assert!(
        call.saw(|e| matches!(e, SimEvent::Rejected { code: 480, .. })),
        "{:?}",
        call.timeline()
    );
    assert!(!host.logs_containing("rejecting with 480").is_empty());

    let (_host, call) = run(
        "export default { async onCall(call) { await call.answer(); await call.say('bye'); } };",
        |c| c,
    )
    .await;
    assert!(call.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}

#[tokio::test(start_paused = true)]
async fn a_dtmf_listener_keeps_the_call_until_the_caller_acts() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    call.on('dtmf', async (e) => {
      await call.say(`you pressed ${e.digit}`);
      await call.hangup();
    });
  },
};
"#;
    let (_host, call) = run(source, |c| c.dtmf(secs(5.0), "3")).await;
    assert_eq!(call.said(), vec!["you pressed 3"]);
    assert!(call.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}

#[tokio::test(start_paused = true)]
async fn timers_fire_and_can_be_cleared() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    let ticks = 0;
    const id = setInterval(() => { ticks += 1; }, 100);
    const never = setTimeout(() => console.log('cleared timer fired'), 50);
    clearTimeout(never);
    await new Promise((resolve) => setTimeout(resolve, 1050, 'x'));
    clearInterval(id);
    console.log(`ticks ${ticks}`);
    await call.hangup();
  },
};
"#;
    let (host, _call) = run(source, |c| c).await;
    assert_eq!(line(&host, "ticks").message, "ticks 10");
    assert!(host.logs_containing("cleared timer fired").is_empty());
}

#[tokio::test(start_paused = true)]
async fn too_many_timers_throw() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    try {
      for (let i = 0; i < 10; i++) setTimeout(() => {}, 1000);
    } catch (e) {
      console.log(`caught ${e.name}: ${e.message}`);
    }
    await call.hangup();
  },
};
"#;
    let limits = switchboard_scenarios::Limits {
        max_timers: 5,
        ..Default::default()
    };
    let (host, _call) = run_with(limits, source, |c| c).await;
    assert_eq!(
        line(&host, "caught").message,
        "caught RangeError: setTimeout: too many timers (the limit is 5)"
    );
}

#[tokio::test(start_paused = true)]
async fn bad_arguments_throw_type_errors() {
    let source = r#"
export default {
  async onCall(call) {
    const tries = [
      () => call.reject(200),
      () => call.collectDigits({ max: 0 }),
      () => call.collectDigits({ terminators: 'x' }),
      () => call.say({}),
      () => call.on('nope', () => {}),
      () => setTimeout('code', 10),
    ];
    for (const t of tries) {
      try { t(); console.log('no error'); } catch (e) { console.log(`caught ${e.name}`); }
    }
    await call.reject(404);
  },
};
"#;
    let (host, _call) = run(source, |c| c).await;
    let caught = host.logs_containing("caught TypeError").len();
    assert_eq!(caught, 6, "{:#?}", messages(&host.logs()));
}

#[tokio::test(start_paused = true)]
async fn a_second_collect_while_one_runs_is_refused() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const first = call.collectDigits({ max: 1 });
    try { await call.collectDigits({ max: 1 }); } catch (e) { console.log(`second ${e.code}`); }
    console.log(`first ${(await first).digits}`);
    await call.hangup();
  },
};
"#;
    let (host, _call) = run(source, |c| c.dtmf(secs(1.0), "8")).await;
    assert_eq!(line(&host, "second").message, "second BUSY");
    assert_eq!(line(&host, "first").message, "first 8");
}

#[tokio::test(start_paused = true)]
async fn calls_wait_for_a_module_with_top_level_await() {
    let source = r#"
const config = await new Promise((resolve) => setTimeout(() => resolve({ greeting: 'Hello' }), 500));
export default {
  async onCall(call) {
    await call.answer();
    await call.say(config.greeting);
    await call.hangup();
  },
};
"#;
    let (_host, call) = run(source, |c| c).await;
    assert_eq!(call.said(), vec!["Hello"]);
    let answered = call
        .timeline()
        .into_iter()
        .find(|e| e.event == SimEvent::Answered)
        .unwrap();
    assert!(answered.at >= secs(0.5), "answered at {:?}", answered.at);
}
