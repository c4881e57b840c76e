//! Call control and media through the simulator: ring, early media, headers
//! on answer and hangup, play, stopMedia, barge-in, sendDigits, record,
//! mediaEnded.

mod common;

use common::*;
use switchboard_scenarios::sim::SimEvent;

#[tokio::test(start_paused = true)]
async fn ring_early_media_then_answer_with_headers_and_hang_up_with_headers() {
    let source = r#"
export default {
  async onCall(call) {
    await call.ring();
    console.log(`state ${call.state}`);
    await call.earlyMedia();
    const r = await call.play('tone:ringback');
    console.log(`early ${r.reason}`);
    await call.answer({ headers: { 'X-Queue': 'sales', 'X-Priority': 2 } });
    await call.hangup({ headers: { 'X-Reason': 'done' } });
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    assert_eq!(line(&host, "state").message, "state ringing");
    assert_eq!(line(&host, "early").message, "early finished");
    let events: Vec<SimEvent> = call.timeline().into_iter().map(|e| e.event).collect();
    let position = |wanted: &SimEvent| events.iter().position(|e| e == wanted).unwrap();
    assert!(position(&SimEvent::Ringing) < position(&SimEvent::EarlyMedia));
    assert!(position(&SimEvent::EarlyMedia) < position(&SimEvent::Answered));
    assert!(events.contains(&SimEvent::SentHeaders {
        headers: vec![
            ("X-Queue".into(), "sales".into()),
            ("X-Priority".into(), "2".into())
        ]
    }));
    assert!(events.contains(&SimEvent::SentHeaders {
        headers: vec![("X-Reason".into(), "done".into())]
    }));
    // The ringback cadence is 6 s: the answer comes after it.
    let answered = call
        .timeline()
        .into_iter()
        .find(|e| e.event == SimEvent::Answered)
        .unwrap();
    assert!(answered.at >= secs(6.0), "{:?}", answered.at);
}

#[tokio::test(start_paused = true)]
async fn headers_the_sip_stack_owns_are_refused() {
    let source = r#"
export default {
  async onCall(call) {
    for (const h of [{ Via: 'x' }, { 'Call-ID': 'x' }, { 'bad name': 'x' }, { 'X-A': 'a\r\nB: b' }, 'X-A']) {
      try { await call.answer({ headers: h }); console.log('accepted'); }
      catch (e) { console.log(`refused ${e.name}`); }
    }
    await call.reject(603);
  },
};
"#;
    let (host, _call) = run(source, |c| c).await;
    assert_eq!(host.logs_containing("refused TypeError").len(), 5);
    assert!(host.logs_containing("accepted").is_empty());
}

#[tokio::test(start_paused = true)]
async fn play_files_tones_and_urls_and_refuse_other_sources() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const results = [];
    for (const s of ['welcome.wav', 'tone:440/1000', 'https://cdn.example.com/hold.wav']) {
      const r = await call.play(s);
      results.push(`${s}=${r.reason}`);
    }
    console.log(`played ${results.join(' ')}`);
    for (const bad of ['../secret.wav', '/etc/x.wav', 'file:///x.wav', 'tone:440', 'song.mp3', 42]) {
      try { call.play(bad); console.log('accepted'); } catch (e) { console.log(`refused ${e.name}: ${e.message}`); }
    }
    await call.hangup();
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    assert_eq!(
        line(&host, "played").message,
        "played welcome.wav=finished tone:440/1000=finished https://cdn.example.com/hold.wav=finished"
    );
    assert_eq!(
        call.played(),
        vec![
            "welcome.wav",
            "tone:440/1000",
            "https://cdn.example.com/hold.wav"
        ]
    );
    assert_eq!(host.logs_containing("refused TypeError").len(), 6);
    // Files take 3 s in the simulator, the tone 1 s.
    let hung_up = call.timeline().last().unwrap().at;
    assert!(hung_up >= secs(7.0) && hung_up < secs(7.5), "{hung_up:?}");
}

#[tokio::test(start_paused = true)]
async fn looped_play_runs_until_stop_media() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    setTimeout(() => call.stopMedia(), 10000);
    const r = await call.play('music.wav', { loop: true });
    console.log(`loop ${r.interrupted} ${r.reason}`);
    await call.hangup();
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    let result = line(&host, "loop");
    assert_eq!(result.message, "loop true interrupted");
    assert!(
        (10.0..10.1).contains(&result.at.as_secs_f64()),
        "{:?}",
        result.at
    );
    assert!(call.saw(|e| *e
        == SimEvent::Played {
            source: "music.wav".into(),
            looped: true
        }));
}

#[tokio::test(start_paused = true)]
async fn barge_in_stops_play_at_the_first_key_and_the_key_is_kept() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const r = await call.play('menu.wav', { bargeIn: true });
    console.log(`play ${r.reason}`);
    const c = await call.collectDigits({ max: 1 });
    console.log(`digit ${c.digits}`);
    await call.hangup();
  },
};
"#;
    let (host, _call) = run(source, |c| c.dtmf(secs(1.0), "7")).await;
    let play = line(&host, "play");
    assert_eq!(play.message, "play interrupted");
    assert!(play.at < secs(1.1), "{:?}", play.at);
    assert_eq!(line(&host, "digit").message, "digit 7");
}

#[tokio::test(start_paused = true)]
async fn media_ended_events_report_each_say_and_play() {
    let source = r#"
export default {
  async onCall(call) {
    call.on('mediaEnded', (e) => console.log(`ended ${e.kind} ${e.text ?? e.source} ${e.reason}`));
    await call.answer();
    await call.say('hello');
    await call.play('tone:beep');
    await call.hangup();
  },
};
"#;
    let (host, _call) = run(source, |c| c).await;
    assert_eq!(line(&host, "ended say").message, "ended say hello finished");
    assert_eq!(
        line(&host, "ended play").message,
        "ended play tone:beep finished"
    );
}

#[tokio::test(start_paused = true)]
async fn send_digits_and_validation() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.sendDigits('12#*a');
    for (const bad of ['', '12x', 12]) {
      try { call.sendDigits(bad); console.log('accepted'); } catch (e) { console.log(`refused ${e.name}`); }
    }
    await call.hangup();
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    assert!(call.saw(|e| *e
        == SimEvent::SentDigits {
            digits: "12#*A".into()
        }));
    assert_eq!(host.logs_containing("refused TypeError").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn record_and_stop_give_the_location_and_duration() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    const rec = await call.record({ format: 'wav' });
    console.log(`recording ${rec.id} ${rec.location}`);
    await new Promise((r) => setTimeout(r, 4000));
    const done = await rec.stop();
    console.log(`stopped ${done.location} ${done.durationMs}`);
    try { call.record({ format: 'mp3' }); } catch (e) { console.log(`format ${e.name}`); }
    await call.hangup();
  },
};
"#;
    let (host, call) = run(source, |c| c).await;
    assert_eq!(
        line(&host, "recording").message,
        "recording rec-1 sim://recordings/call-1-rec-1.wav"
    );
    assert_eq!(
        line(&host, "stopped").message,
        "stopped sim://recordings/call-1-rec-1.wav 4000"
    );
    assert_eq!(line(&host, "format").message, "format TypeError");
    assert!(call.saw(|e| matches!(
        e,
        SimEvent::RecordingStopped {
            duration_ms: 4000,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_recording_ends_with_the_call() {
    let source = r#"
export default {
  async onCall(call) {
    call.on('hangup', () => {});
    await call.answer();
    await call.record();
    await call.play('hold.wav', { loop: true });
  },
};
"#;
    let (_host, call) = run(source, |c| c.hangup_at(secs(5.0))).await;
    assert!(call.saw(|e| matches!(
        e,
        SimEvent::RecordingStopped {
            duration_ms: 5000,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn media_on_an_ended_call_settles_as_hangup() {
    let source = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.hangup();
    const r = await call.play('tone:beep');
    console.log(`after ${r.reason}`);
    try { await call.sendDigits('1'); } catch (e) { console.log(`digits ${e.code}`); }
  },
};
"#;
    let (host, _call) = run(source, |c| c).await;
    assert_eq!(line(&host, "after").message, "after hangup");
    assert_eq!(line(&host, "digits").message, "digits CALL_ENDED");
}
