//! The conference API through the simulator: participant objects and their
//! controls, talking events, options (maxParticipants, waitMusic), media
//! into the mix, recording, and join/leave/empty.

mod common;

use std::sync::Arc;

use common::*;
use switchboard_scenarios::host::{CallControl, CallState};
use switchboard_scenarios::sim::{HangupSide, SimCall, SimCallBuilder, SimEvent, SimHost};

/// Runs `source` as the conference scenario of `conf_1` for the calls.
async fn room(source: &str, calls: Vec<SimCallBuilder>) -> (Arc<SimHost>, Vec<Arc<SimCall>>) {
    let host = SimHost::new();
    host.add_rule("room", "conf_*", &compile("room.js", source), true);
    let mut built = Vec::new();
    for call in calls {
        let call = call.build();
        host.dispatch(call.clone(), "conf_1").await.unwrap();
        built.push(call);
    }
    all_closed(&host).await;
    (host, built)
}

#[tokio::test(start_paused = true)]
async fn participants_are_objects_with_live_state_and_controls() {
    let source = r#"
let conf;
export default {
  onConference(c) { conf = c; },
  async onCall(call) {
    await call.answer();
    const p = await conf.add(call, { muted: call.id === 'b' });
    console.log(`added ${p.callId} muted=${p.muted} deaf=${p.deaf} talking=${p.talking} same=${p === conf.participant(call.id)} call=${p.call === call}`);
    if (call.id !== 'b') return;
    await p.unmute();
    await p.deafen();
    await p.setGain(-6);
    console.log(`b now muted=${p.muted} deaf=${p.deaf} gain=${p.gainDb}`);
    console.log(`list ${conf.participants.map((x) => x.callId).join(',')} ${conf.participants[0] === conf.participant('a')}`);
    try { p.setGain(100); } catch (e) { console.log(`gain ${e.name}`); }
    await new Promise((r) => setTimeout(r, 1000));
    await conf.participant('a').kick();
  },
};
"#;
    let calls = vec![
        SimCall::builder("a").hangup_at(secs(60.0)),
        SimCall::builder("b").hangup_at(secs(10.0)),
    ];
    let (host, calls) = room(source, calls).await;
    assert_eq!(
        line(&host, "added a").message,
        "added a muted=false deaf=false talking=false same=true call=true"
    );
    assert_eq!(
        line(&host, "added b").message.split(' ').nth(2),
        Some("muted=true")
    );
    assert_eq!(
        line(&host, "b now").message,
        "b now muted=false deaf=true gain=-6"
    );
    assert_eq!(line(&host, "list").message, "list a,b true");
    assert_eq!(line(&host, "gain").message, "gain RangeError");
    let conference = host.conference("conf_1").unwrap();
    for change in ["unmuted", "deafened", "gain -6 dB"] {
        assert!(
            conference.saw(|e| *e
                == SimEvent::Participant {
                    call_id: "b".into(),
                    change: change.into()
                }),
            "{change}: {:#?}",
            conference.timeline()
        );
    }
    assert!(conference.saw(|e| *e
        == SimEvent::Kicked {
            call_id: "a".into()
        }));
    // Kicked (1 s after b joined): hung up long before its own hangup at 60 s.
    let kicked = calls[0]
        .timeline()
        .into_iter()
        .find(|e| {
            e.event
                == SimEvent::HungUp {
                    by: HangupSide::Local,
                }
        })
        .expect("a was hung up");
    assert!(kicked.at < secs(2.0), "{:?}", kicked.at);
    assert_eq!(calls[0].state(), CallState::Ended);
}

#[tokio::test(start_paused = true)]
async fn talking_and_silent_events_carry_the_participant() {
    let source = r#"
let conf;
export default {
  onConference(c) {
    conf = c;
    conf.on('talking', (p) => console.log(`talking ${p.callId} ${p.talking}`));
    conf.on('silent', (p) => console.log(`silent ${p.callId} ${p.talking}`));
  },
  async onCall(call) {
    await call.answer();
    await conf.add(call);
  },
};
"#;
    let calls = vec![
        SimCall::builder("a")
            .talk(secs(2.0), secs(3.0))
            .hangup_at(secs(8.0)),
        SimCall::builder("b").hangup_at(secs(8.0)),
    ];
    let (host, _calls) = room(source, calls).await;
    let talking = line(&host, "talking a");
    assert_eq!(talking.message, "talking a true");
    assert!(
        (2.0..2.1).contains(&talking.at.as_secs_f64()),
        "{:?}",
        talking.at
    );
    let silent = line(&host, "silent a");
    assert_eq!(silent.message, "silent a false");
    assert!(
        (5.0..5.1).contains(&silent.at.as_secs_f64()),
        "{:?}",
        silent.at
    );
    assert!(host.logs_containing("talking b").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_full_room_rejects_the_next_caller_with_full() {
    let source = r#"
let conf;
export default {
  onConference(c) { conf = c; conf.maxParticipants = 2; },
  async onCall(call) {
    await call.answer();
    try {
      await conf.add(call);
    } catch (e) {
      console.log(`refused ${call.id} ${e.code} ${conf.maxParticipants}`);
      await call.say('The room is full');
      await call.hangup();
    }
  },
};
"#;
    let calls = ["a", "b", "c"]
        .iter()
        .map(|id| SimCall::builder(id).hangup_at(secs(5.0)))
        .collect();
    let (host, calls) = room(source, calls).await;
    assert_eq!(line(&host, "refused").message, "refused c FULL 2");
    assert_eq!(calls[2].said(), vec!["The room is full"]);
    assert!(host.conference("conf_1").unwrap().saw(|e| matches!(
        e,
        SimEvent::Configured {
            max_participants: Some(2),
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn wait_music_plays_while_a_participant_is_alone() {
    let source = r#"
let conf;
export default {
  onConference(c) {
    conf = c;
    console.log(`unset ${conf.waitMusic} ${conf.maxParticipants}`);
    conf.configure({ waitMusic: 'music/hold.wav' });
    console.log(`music ${conf.waitMusic}`);
    try { conf.waitMusic = '../x.wav'; } catch (e) { console.log(`bad music ${e.name}`); }
  },
  async onCall(call) {
    await call.answer();
    await conf.add(call);
  },
};
"#;
    let calls = vec![
        SimCall::builder("a").hangup_at(secs(30.0)),
        SimCall::builder("b").hangup_at(secs(20.0)),
    ];
    let (host, _calls) = room(source, calls).await;
    assert_eq!(line(&host, "unset").message, "unset null null");
    assert_eq!(line(&host, "music").message, "music music/hold.wav");
    assert_eq!(line(&host, "bad music").message, "bad music TypeError");
    let conference = host.conference("conf_1").unwrap();
    let music: Vec<(f64, Option<String>)> = conference
        .timeline()
        .into_iter()
        .filter_map(|e| match e.event {
            SimEvent::WaitMusic { source } => Some((e.at.as_secs_f64(), source)),
            _ => None,
        })
        .collect();
    // a alone (on), b joins (off), b leaves at 20 s (on), a leaves (off).
    assert_eq!(music.len(), 4, "{music:?}");
    assert_eq!(music[0].1.as_deref(), Some("music/hold.wav"));
    assert_eq!(music[1].1, None);
    assert!((20.0..20.1).contains(&music[2].0), "{music:?}");
    assert_eq!(music[3].1, None);
}

#[tokio::test(start_paused = true)]
async fn announcements_play_and_recording_of_the_mix() {
    let source = r#"
let conf;
export default {
  onConference(c) {
    conf = c;
    conf.on('join', async (p) => {
      if (conf.size !== 2) return;
      const rec = await conf.record();
      await conf.say(`${p.callId} joined`);
      const tone = await conf.play('tone:beep');
      const done = await rec.stop();
      console.log(`mix ${tone.reason} ${done.location} ${done.durationMs}`);
    });
  },
  async onCall(call) {
    await call.answer();
    await conf.add(call);
  },
};
"#;
    let calls = vec![
        SimCall::builder("a").hangup_at(secs(10.0)),
        SimCall::builder("b").hangup_at(secs(10.0)),
    ];
    let (host, _calls) = room(source, calls).await;
    // "b joined" is 8 characters (520 ms), the beep 200 ms.
    assert_eq!(
        line(&host, "mix").message,
        "mix finished sim://recordings/conf_1-rec-1.wav 720"
    );
    let conference = host.conference("conf_1").unwrap();
    assert!(conference.saw(|e| *e
        == SimEvent::Said {
            text: "b joined".into()
        }));
    assert!(
        conference.saw(|e| matches!(e, SimEvent::Played { source, .. } if source == "tone:beep"))
    );
}

#[tokio::test(start_paused = true)]
async fn looped_music_into_the_mix_stops_with_stop_media() {
    let source = r#"
let conf;
export default {
  onConference(c) { conf = c; },
  async onCall(call) {
    await call.answer();
    await conf.add(call);
    setTimeout(() => conf.stopMedia(), 3000);
    const r = await conf.play('music.wav', { loop: true });
    console.log(`music ${r.reason}`);
    await call.hangup();
  },
};
"#;
    let (host, _calls) = room(source, vec![SimCall::builder("a")]).await;
    let music = line(&host, "music");
    assert_eq!(music.message, "music interrupted");
    assert_eq!(music.at, secs(3.0));
}

#[tokio::test(start_paused = true)]
async fn leave_and_empty_events_and_participants_after_leaving() {
    let source = r#"
let conf;
let kept;
export default {
  onConference(c) {
    conf = c;
    conf.on('join', (p) => { if (p.callId === 'a') kept = p; });
    conf.on('leave', (p) => console.log(`leave ${p.callId} size=${conf.size} same=${p === kept}`));
    conf.on('empty', () => console.log(`empty ${conf.participants.length} ${kept.talking}`));
  },
  async onCall(call) {
    await call.answer();
    await conf.add(call);
  },
};
"#;
    let calls = vec![
        SimCall::builder("a").hangup_at(secs(3.0)),
        SimCall::builder("b").hangup_at(secs(4.0)),
    ];
    let (host, _calls) = room(source, calls).await;
    assert_eq!(line(&host, "leave a").message, "leave a size=1 same=true");
    assert_eq!(line(&host, "leave b").message, "leave b size=0 same=false");
    assert_eq!(line(&host, "empty").message, "empty 0 false");
}
