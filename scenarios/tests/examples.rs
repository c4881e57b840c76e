//! The example applications, run through the simulator the way
//! `switchboard test-scenario` runs them.

mod common;

use std::path::PathBuf;

use common::*;
use switchboard_scenarios::host::{CallControl, CallState};
use switchboard_scenarios::sim::{
    run_test_scenario, HangupSide, SimCall, SimCallBuilder, SimDial, SimEvent, SimReport,
    Simulation, TestScenarioArgs,
};

fn example(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(path)
}

async fn ivr(caller: SimCallBuilder, dial: SimDial) -> SimReport {
    Simulation::from_file(&example("ivr/ivr.js"))
        .unwrap()
        .any_dial(dial)
        .call(caller)
        .run()
        .await
}

const MENU: &str = "For sales, press 1. To hear the time, press 2.";

#[tokio::test(start_paused = true)]
async fn ivr_sales_dials_out_and_bridges() {
    let caller = SimCall::builder("caller")
        .dtmf_on_prompt("1")
        .hangup_at(secs(60.0));
    let report = ivr(caller, SimDial::answer_after(secs(4.0))).await;
    assert!(!report.failed(), "{report}");
    let caller = report.call("caller").unwrap();
    assert_eq!(
        caller.said(),
        vec![
            "Thank you for calling Acme.",
            MENU,
            "Connecting you to sales."
        ]
    );
    assert_eq!(caller.played(), vec!["tone:ringback"]);
    assert!(caller.saw(|e| *e
        == SimEvent::Bridged {
            with: "dial-1".into()
        }));
    let sales = report.call("dial-1").unwrap();
    assert_eq!(sales.to_uri(), "sip:sales@127.0.0.1:5070");
    // The caller hung up at 60 s: sales is hung up with it.
    assert!(sales.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
    let timeline = report.timeline.to_string();
    assert!(
        timeline.contains("dialing sip:sales@127.0.0.1:5070"),
        "{timeline}"
    );
    assert!(
        timeline.contains("sent headers X-Caller: sip:caller@sim"),
        "{timeline}"
    );
}

#[tokio::test(start_paused = true)]
async fn ivr_sales_busy_says_so_and_hangs_up() {
    let caller = SimCall::builder("caller").dtmf_on_prompt("1");
    let report = ivr(caller, SimDial::fail(486, "Busy Here", secs(3.0))).await;
    let caller = report.call("caller").unwrap();
    assert_eq!(
        caller.said().last().map(String::as_str),
        Some("Sales cannot take your call right now. Please try again later.")
    );
    assert!(caller.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
    assert_eq!(
        report
            .logs_containing("sales did not answer: 486 Busy Here")
            .len(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn ivr_time_then_menu_again() {
    let caller = SimCall::builder("caller")
        .dtmf_on_prompt("2")
        .hangup_at(secs(20.0));
    let report = ivr(caller, SimDial::default()).await;
    let said = report.call("caller").unwrap().said();
    assert_eq!(said[1], MENU);
    assert!(
        said[2].starts_with("It is ") && (said[2].ends_with(" AM.") || said[2].ends_with(" PM.")),
        "{said:?}"
    );
    assert_eq!(said[3], MENU, "the menu comes back");
}

#[tokio::test(start_paused = true)]
async fn ivr_wrong_keys_are_retried_then_goodbye() {
    let caller = SimCall::builder("caller")
        .dtmf_on_prompt("9")
        .dtmf_on_prompt("7")
        .dtmf_on_prompt("7")
        .dtmf_on_prompt("7")
        .dtmf_on_prompt("5");
    let report = ivr(caller, SimDial::default()).await;
    let caller = report.call("caller").unwrap();
    let said = caller.said();
    assert_eq!(
        said,
        vec![
            "Thank you for calling Acme.",
            MENU,
            "Sorry, that is not an option.",
            MENU,
            "Sorry, that is not an option.",
            MENU,
            "Goodbye."
        ]
    );
    assert_eq!(caller.state(), CallState::Ended);
}

#[tokio::test(start_paused = true)]
async fn ivr_silence_repeats_the_menu_then_goodbye() {
    let report = ivr(SimCall::builder("caller"), SimDial::default()).await;
    let said = report.call("caller").unwrap().said();
    assert_eq!(said.iter().filter(|s| *s == MENU).count(), 3);
    assert_eq!(said.last().map(String::as_str), Some("Goodbye."));
}

#[tokio::test(start_paused = true)]
async fn ivr_sales_uri_from_custom_data() {
    let report = Simulation::from_file(&example("ivr/ivr.js"))
        .unwrap()
        .custom_data(serde_json::json!({ "salesUri": "sip:queue@pbx.example.com" }))
        .call(
            SimCall::builder("caller")
                .dtmf_on_prompt("1")
                .hangup_at(secs(30.0)),
        )
        .run()
        .await;
    assert_eq!(
        report.call("dial-1").unwrap().to_uri(),
        "sip:queue@pbx.example.com"
    );
}

/// The moderated example: a participant waits with music, muted; the
/// moderator joins with the PIN, then mutes (*1) and unmutes (*2) the others.
#[tokio::test(start_paused = true)]
async fn moderated_room_waits_for_the_moderator() {
    // The moderator arrives at 15 s, so presses *1 at 45 s and *2 at 65 s;
    // the guest talks while muted (50 s), then while not (70 s).
    let participant = SimCall::builder("guest")
        .dtmf_on_prompt("1234#")
        .dtmf_on_prompt("#")
        .talk(secs(50.0), secs(2.0))
        .talk(secs(70.0), secs(2.0))
        .hangup_at(secs(90.0));
    let moderator = SimCall::builder("boss")
        .dtmf_on_prompt("1234#")
        .dtmf_on_prompt("4321#")
        .dtmf(secs(30.0), "*1")
        .dtmf(secs(50.0), "*2")
        .hangup_at(secs(80.0));
    let report = Simulation::from_file(&example("moderated/gateway.js"))
        .unwrap()
        .destination("5000")
        .call(participant)
        .call_at(secs(15.0), moderator)
        .run()
        .await;
    assert!(!report.failed(), "{report}");
    let conference = report
        .host
        .conference("room_1234")
        .expect("the room started");
    let events: Vec<SimEvent> = conference.timeline().into_iter().map(|e| e.event).collect();
    let at = |wanted: &SimEvent| {
        events
            .iter()
            .position(|e| e == wanted)
            .unwrap_or_else(|| panic!("no {wanted:?} in {report}"))
    };
    let music = SimEvent::Played {
        source: "tone:523/250,659/250,784/250,1047/500,0/1500".into(),
        looped: true,
    };
    let unmuted = SimEvent::Participant {
        call_id: "guest".into(),
        change: "unmuted".into(),
    };
    let muted = SimEvent::Participant {
        call_id: "guest".into(),
        change: "muted".into(),
    };
    assert!(
        at(&SimEvent::Joined {
            call_id: "guest".into()
        }) < at(&music)
    );
    assert!(
        at(&music)
            < at(&SimEvent::Joined {
                call_id: "boss".into()
            })
    );
    assert!(
        at(&SimEvent::Joined {
            call_id: "boss".into()
        }) < at(&unmuted)
    );
    assert!(at(&unmuted) < at(&muted));
    assert!(
        at(&SimEvent::Said {
            text: "Everyone else is muted.".into()
        }) > at(&muted)
    );
    let unmuted_again = events.iter().rposition(|e| *e == unmuted).unwrap();
    assert!(unmuted_again > at(&muted));
    assert!(events.contains(&SimEvent::Interrupted {
        text: "tone:523/250,659/250,784/250,1047/500,0/1500".into()
    }));
    // Muted talk is not heard: one talking event, at 70 s.
    let talking: Vec<_> = report
        .timeline
        .entries
        .iter()
        .filter(|e| {
            e.event
                == SimEvent::Talking {
                    call_id: "guest".into(),
                }
        })
        .collect();
    assert_eq!(talking.len(), 1, "{report}");
    assert!(
        (70.0..70.1).contains(&talking[0].at.as_secs_f64()),
        "{report}"
    );
    // Both went through the gateway.
    let guest = report.call("guest").unwrap();
    assert!(guest.saw(|e| *e
        == SimEvent::Routed {
            destination: "room_1234".into()
        }));
    assert_eq!(
        guest.said().last().map(String::as_str),
        Some("Welcome. Please wait for the moderator.")
    );
}

#[tokio::test(start_paused = true)]
async fn moderated_wrong_pin_joins_as_participant() {
    let report = Simulation::from_file(&example("moderated/gateway.js"))
        .unwrap()
        .call(
            SimCall::builder("guest")
                .dtmf_on_prompt("77#")
                .dtmf_on_prompt("1111#")
                .hangup_at(secs(30.0)),
        )
        .run()
        .await;
    let guest = report.call("guest").unwrap();
    assert!(guest
        .said()
        .contains(&"That PIN is not right. You are joining as a participant.".to_string()));
    let conference = report.host.conference("room_77").unwrap();
    assert!(conference.saw(|e| matches!(e, SimEvent::Played { looped: true, .. })));
}

#[test]
fn test_scenario_cli_prints_the_timeline() {
    let mut args = TestScenarioArgs::new(example("ivr/ivr.js"));
    args.dtmf = vec!["1".into()];
    args.dial_fail = Some(486);
    let printed = run_test_scenario(&args).unwrap();
    for expected in [
        "call-1  answered",
        "said \"Thank you for calling Acme.\"",
        "caller pressed 1",
        "played tone:ringback (looped)",
        "host    dialing sip:sales@127.0.0.1:5070",
        "dial sip:sales@127.0.0.1:5070 failed: 486 Busy Here",
        "hung up by the scenario",
        "-- ended after",
    ] {
        assert!(
            printed.contains(expected),
            "{expected:?} missing from:\n{printed}"
        );
    }
}

#[test]
fn test_scenario_cli_stops_at_the_time_limit() {
    let mut args = TestScenarioArgs::new(example("moderated/room.js"));
    args.destination = "room_9".into();
    args.max_duration = secs(60.0);
    let printed = run_test_scenario(&args).unwrap();
    assert!(printed.contains("conf room_9"), "{printed}");
    assert!(printed.contains("time limit of 60s reached"), "{printed}");
    assert!(
        printed.contains("-- stopped at the time limit after 60"),
        "{printed}"
    );
}
