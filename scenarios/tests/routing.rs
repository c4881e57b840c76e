//! `routeTo` hand-over between instances, and conference instances.

mod common;

use common::*;
use switchboard_scenarios::host::{CallControl, CallState, ConferenceControl};
use switchboard_scenarios::sim::{HangupSide, SimCall, SimEvent, SimHost};

const GATEWAY: &str = r#"
export default {
  async onCall(call, ctx) {
    await call.answer();
    const { digits } = await call.collectDigits({ prompt: 'Room number?', max: 4 });
    try {
      await call.routeTo(`conf_${digits}`, { customData: { via: 'gateway', code: digits } });
    } catch (e) {
      console.log(`route failed ${e.code}`);
      await call.say('There is no such room');
      await call.hangup();
      return;
    }
    try { await call.say('still mine?'); } catch (e) { console.log(`after route ${e.code}`); }
    console.log(`state after route ${call.state}`);
  },
};
"#;

const ROOM: &str = r#"
let room;
export default {
  async onConference(conf, ctx) {
    room = conf;
    console.log(`conference ${conf.name} rule=${ctx.rule} size=${conf.size}`);
    conf.on('join', (e) => console.log(`join ${e.callId} ${e.call ? 'mine' : 'unknown'} size=${room.size}`));
    conf.on('leave', (e) => console.log(`leave ${e.callId}`));
    conf.on('empty', () => console.log('empty'));
  },
  async onCall(call, ctx) {
    console.log(`onCall ${call.id} data=${JSON.stringify(ctx.customData)} same=${ctx.conference === room}`);
    await call.say('Welcome to the room');
    await room.add(call, { beep: true });
    console.log(`participants ${room.participants.join(',')}`);
  },
};
"#;

fn host_with_rules() -> std::sync::Arc<SimHost> {
    let host = SimHost::new();
    host.add_rule("rooms", "conf_*", &compile("room.js", ROOM), true);
    host.add_rule("gateway", "*", &compile("gateway.js", GATEWAY), false);
    host
}

#[tokio::test(start_paused = true)]
async fn route_to_hands_the_call_to_the_conference_instance() {
    let host = host_with_rules();
    let alice = SimCall::builder("alice")
        .dtmf(secs(2.0), "42#")
        .hangup_at(secs(20.0))
        .build();
    let bob = SimCall::builder("bob")
        .dtmf(secs(3.0), "42#")
        .hangup_at(secs(25.0))
        .build();
    host.dispatch(alice.clone(), "1000").await.unwrap();
    host.dispatch(bob.clone(), "1000").await.unwrap();
    all_closed(&host).await;

    let routes = host.routes();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].call_id, "alice");
    assert_eq!(routes[0].destination, "conf_42");
    assert_eq!(
        routes[0].custom_data,
        serde_json::json!({"via": "gateway", "code": "42"})
    );
    assert!(
        alice.saw(|e| matches!(e, SimEvent::Routed { destination } if destination == "conf_42"))
    );

    // The gateway's call object is inert after the hand-over.
    assert_eq!(host.logs_containing("after route CALL_RELEASED").len(), 2);
    assert_eq!(host.logs_containing("state after route answered").len(), 2);

    // One conference instance for both calls, onConference before the first onCall.
    let log = messages(&host.logs());
    let first = |text: &str| {
        log.iter()
            .position(|m| m.starts_with(text))
            .unwrap_or_else(|| panic!("no {text:?} in {log:#?}"))
    };
    assert_eq!(host.logs_containing("conference conf_42").len(), 1);
    assert!(first("conference conf_42 rule=rooms size=0") < first("onCall alice"));
    assert_eq!(
        line(&host, "onCall alice").message,
        r#"onCall alice data={"code":"42","via":"gateway"} same=true"#
    );
    assert!(first("join alice mine size=1") < first("join bob mine size=2"));
    assert!(first("join bob") < first("leave alice"));
    assert!(first("leave alice") < first("leave bob"));
    assert!(first("leave bob") < first("empty"));
    assert_eq!(
        line(&host, "participants alice,bob").message,
        "participants alice,bob"
    );

    assert_eq!(alice.said(), vec!["Room number?", "Welcome to the room"]);
    assert!(alice.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Remote
        }));
    let conference = host.conference("conf_42").unwrap();
    assert_eq!(conference.size(), 0);
    assert!(conference.saw_join("alice") && conference.saw_join("bob"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_route_gives_the_call_back() {
    let host = SimHost::new();
    host.add_rule("rooms", "conf_1*", &compile("room.js", ROOM), true);
    host.add_rule("gateway", "1000", &compile("gateway.js", GATEWAY), false);
    let call = SimCall::builder("carol").dtmf(secs(2.0), "99#").build();
    host.dispatch(call.clone(), "1000").await.unwrap();
    all_closed(&host).await;
    assert_eq!(line(&host, "route failed").message, "route failed NO_ROUTE");
    assert_eq!(call.said(), vec!["Room number?", "There is no such room"]);
    assert!(call.saw(|e| *e
        == SimEvent::HungUp {
            by: HangupSide::Local
        }));
}

#[tokio::test(start_paused = true)]
async fn keys_typed_after_the_hand_over_reach_the_new_instance() {
    let menu = r#"
export default {
  async onCall(call, ctx) {
    const r = await call.collectDigits({ max: 1, firstDigitTimeoutMs: 10000 });
    console.log(`menu got ${r.digits} from ${ctx.customData.from}`);
    await call.hangup();
  },
};
"#;
    let front = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.routeTo('menu', { customData: { from: 'front' } });
  },
};
"#;
    let host = SimHost::new();
    host.add_rule("menu", "menu", &compile("menu.js", menu), false);
    host.add_rule("front", "front", &compile("front.js", front), false);
    let call = SimCall::builder("dave").dtmf(secs(1.0), "7").build();
    host.dispatch(call.clone(), "front").await.unwrap();
    all_closed(&host).await;
    assert_eq!(line(&host, "menu got").message, "menu got 7 from front");
    assert_eq!(call.state(), CallState::Ended);
}

#[tokio::test(start_paused = true)]
async fn conf_end_hangs_everyone_up_and_ends_the_instance() {
    let room = r#"
let room;
export default {
  onConference(conf) {
    room = conf;
    conf.on('join', async () => {
      if (room.size === 2) {
        await room.say('The meeting is over');
        await room.end();
      }
    });
  },
  async onCall(call) {
    await call.answer();
    await room.add(call);
  },
};
"#;
    let host = SimHost::new();
    host.add_rule("rooms", "conf_*", &compile("room.js", room), true);
    let a = SimCall::builder("a").build();
    let b = SimCall::builder("b").build();
    host.dispatch(a.clone(), "conf_7").await.unwrap();
    host.dispatch(b.clone(), "conf_7").await.unwrap();
    all_closed(&host).await;
    for call in [&a, &b] {
        assert!(call.saw(|e| *e
            == SimEvent::HungUp {
                by: HangupSide::Local
            }));
    }
    let conference = host.conference("conf_7").unwrap();
    assert!(conference.is_ended());
    assert!(
        conference.saw(|e| matches!(e, SimEvent::Said { text } if text == "The meeting is over"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_into_conferences_on_a_multi_thread_runtime() {
    use std::time::Duration;
    let host = host_with_rules();
    let rooms = ["conf_10", "conf_11", "conf_12", "conf_13"];
    let mut calls = Vec::new();
    for n in 0..40 {
        // Real time, kept short: fast speech, quick keys.
        let keys = format!("{}#", 10 + n % 4);
        let call = SimCall::builder(&format!("call-{n}"))
            .speech_per_char(Duration::from_micros(200))
            .dtmf_with_gap(Duration::from_millis(20), &keys, Duration::from_millis(5))
            .build();
        host.dispatch(call.clone(), "1000").await.unwrap();
        calls.push(call);
    }
    // Everybody reaches a room (however slow the machine), then hangs up.
    let everyone_in = async {
        loop {
            let in_rooms: usize = rooms
                .iter()
                .filter_map(|r| host.conference(r))
                .map(|c| c.size())
                .sum();
            if in_rooms == calls.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), everyone_in)
        .await
        .expect("not everybody reached a room");
    for call in &calls {
        call.remote_hangup();
    }
    tokio::time::timeout(Duration::from_secs(60), all_closed(&host))
        .await
        .expect("instances did not end");
    for call in &calls {
        assert!(call.saw(|e| matches!(e, SimEvent::Routed { .. })));
    }
    for room in rooms {
        assert_eq!(host.conference(room).expect("room started").size(), 0);
    }
    assert_eq!(host.logs_containing("join ").len(), 40);
    assert_eq!(host.logs_containing("empty").len(), 4);
}

#[tokio::test(start_paused = true)]
async fn on_call_waits_for_an_async_on_conference() {
    let room = r#"
let room;
let ready = false;
export default {
  async onConference(conf) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    room = conf;
    ready = true;
  },
  async onCall(call) {
    console.log(`onCall ready=${ready}`);
    await call.answer();
    await room.add(call);
  },
};
"#;
    let host = SimHost::new();
    host.add_rule("rooms", "conf_*", &compile("room.js", room), true);
    let a = SimCall::builder("a").hangup_at(secs(3.0)).build();
    host.dispatch(a.clone(), "conf_1").await.unwrap();
    all_closed(&host).await;
    assert_eq!(line(&host, "onCall").message, "onCall ready=true");
    assert!(host.conference("conf_1").unwrap().saw_join("a"));
}
