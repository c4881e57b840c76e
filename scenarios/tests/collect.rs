//! collectDigits beyond the basics (see call_api.rs): play prompts, pattern
//! validation, retries with an invalid prompt, timeouts with retries, and
//! keys typed during any prompt being kept.

mod common;

use common::*;
use switchboard_scenarios::sim::SimEvent;

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
async fn a_play_prompt_is_interrupted_by_the_first_digit() {
    let (host, call) = run(
        &collect_with("{ prompt: { play: 'menu.wav' }, max: 2 }"),
        |c| c.dtmf(secs(1.0), "42"),
    )
    .await;
    assert_eq!(line(&host, "result").message, "result 42 max");
    assert_eq!(call.played(), vec!["menu.wav"]);
    assert!(call.saw(|e| *e
        == SimEvent::Interrupted {
            text: "menu.wav".into()
        }));
}

#[tokio::test(start_paused = true)]
async fn prompt_objects_take_say_or_text_with_voice_options() {
    let source = collect_with(
        "{ prompt: { say: 'Bonjour', language: 'fr', rate: 1.2 }, max: 1, firstDigitTimeoutMs: 100 }",
    );
    let (_host, call) = run(&source, |c| c).await;
    assert_eq!(call.said(), vec!["Bonjour"]);
    for bad in [
        "{ prompt: 42 }",
        "{ prompt: { play: '../x.wav' } }",
        "{ pattern: 7 }",
    ] {
        let source = format!(
            "export default {{ async onCall(call) {{ try {{ call.collectDigits({bad}); }} \
             catch (e) {{ console.log(`caught ${{e.name}}`); }} await call.reject(486); }} }};"
        );
        let (host, _call) = run(&source, |c| c).await;
        assert_eq!(line(&host, "caught").message, "caught TypeError", "{bad}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pattern_mismatch_retries_with_the_invalid_prompt() {
    // The caller first types 99# (not 1-3), then 2#.
    let source = collect_with(
        "{ prompt: 'Choose one to three', invalidPrompt: 'That is not a choice', \
           pattern: '[1-3]', retries: 2, max: 2 }",
    );
    let (host, call) = run(&source, |c| c.dtmf_on_prompt("99#").dtmf_on_prompt("2#")).await;
    assert_eq!(line(&host, "result").message, "result 2 terminator");
    assert_eq!(
        call.said(),
        vec![
            "Choose one to three",
            "That is not a choice",
            "Choose one to three"
        ],
        "{:#?}",
        call.timeline()
    );
    assert!(!host
        .logs_containing("collectDigits: invalid input \"99\", attempt 2 of 3")
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_on_every_attempt_resolves_invalid_with_the_last_digits() {
    let source = collect_with(
        "{ prompt: 'PIN?', invalidPrompt: { play: 'tone:busy' }, pattern: /^\\d{4}$/g, retries: 1, max: 8 }",
    );
    let (host, call) = run(&source, |c| {
        c.dtmf_on_prompt("12#").dtmf_on_prompt("98765#")
    })
    .await;
    assert_eq!(line(&host, "result").message, "result 98765 invalid");
    assert_eq!(
        call.played(),
        vec!["tone:busy"],
        "the invalid prompt before the retry only"
    );
}

#[tokio::test(start_paused = true)]
async fn fewer_than_min_digits_at_a_timeout_is_invalid() {
    let source = collect_with("{ min: 4, max: 4, interDigitTimeoutMs: 1000, retries: 0 }");
    let (host, _call) = run(&source, |c| c.dtmf(secs(0.5), "12")).await;
    assert_eq!(line(&host, "result").message, "result 12 invalid");
}

#[tokio::test(start_paused = true)]
async fn no_input_retries_the_prompt_then_times_out() {
    // "Code?" takes 325 ms; each attempt waits 2 s for the first digit.
    let source = collect_with("{ prompt: 'Code?', firstDigitTimeoutMs: 2000, retries: 2 }");
    let (host, call) = run(&source, |c| c).await;
    let result = line(&host, "result");
    assert_eq!(result.message, "result  timeout");
    assert_eq!(call.said(), vec!["Code?", "Code?", "Code?"]);
    let at = result.at.as_secs_f64();
    assert!(
        (6.9..7.1).contains(&at),
        "timed out at {at}s, expected 3 x 2.325 s"
    );
    assert_eq!(
        host.logs_containing("collectDigits: no input, attempt")
            .len(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_no_input_accepts_the_next_answer() {
    let source = collect_with("{ prompt: 'Code?', firstDigitTimeoutMs: 1000, retries: 1, max: 3 }");
    let (host, _call) = run(&source, |c| c.dtmf(secs(2.0), "123")).await;
    assert_eq!(line(&host, "result").message, "result 123 max");
}

#[tokio::test(start_paused = true)]
async fn keys_typed_during_the_invalid_prompt_count_for_the_retry() {
    // The invalid prompt (3.2 s of speech) is barged into: the prompt after
    // it is skipped and the keys count.
    let source = collect_with(
        "{ prompt: 'Enter the code', invalidPrompt: 'Sorry, that code is not valid at all', \
           pattern: '7+', retries: 1, max: 2 }",
    );
    let (host, call) = run(&source, |c| c.dtmf(secs(0.2), "12").dtmf(secs(1.5), "77")).await;
    assert_eq!(line(&host, "result").message, "result 77 max");
    assert_eq!(
        call.said(),
        vec!["Enter the code", "Sorry, that code is not valid at all"]
    );
}

#[tokio::test(start_paused = true)]
async fn keys_typed_without_barge_in_are_kept_through_every_prompt() {
    let source = collect_with(
        "{ prompt: 'Enter the code', invalidPrompt: 'Wrong', pattern: '5.*', retries: 1, max: 3, bargeIn: false }",
    );
    // 3 keys during the first prompt (invalid: the attempt is complete, so
    // that prompt stops), then 5 during the second "Enter the code", which
    // plays on, then 66.
    let (host, call) = run(&source, |c| {
        c.dtmf_with_gap(secs(0.1), "123", secs(0.1))
            .dtmf(secs(0.95), "5")
            .dtmf(secs(2.5), "66")
    })
    .await;
    assert_eq!(line(&host, "result").message, "result 566 max");
    assert_eq!(
        call.said(),
        vec!["Enter the code", "Wrong", "Enter the code"]
    );
    let interrupted = call
        .timeline()
        .into_iter()
        .filter(|e| matches!(e.event, SimEvent::Interrupted { .. }))
        .count();
    assert_eq!(interrupted, 1, "{:#?}", call.timeline());
}
