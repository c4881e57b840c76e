//! Recording and talking detection end to end: a call recorded in stereo
//! (the caller on the left, what it hears on the right), and a conference
//! recorded as a mix plus one track per participant, with the room's
//! scenario told who talked. The WAV files are analysed.

mod common;

use std::path::Path;

use common::{TestEngine, T};
use switchboard_testagent::analysis::{min_db_over, tone_ratio_db};
use switchboard_testagent::{Agent, AgentConfig, CallOptions, EndReason};

const APP: &str = r##"
name = "rec"

[[rules]]
name = "room"
pattern = "room_.+"
scenario = "room"
conference = true

[[rules]]
name = "call"
pattern = "call"
scenario = "call"
"##;

/// Records the call in stereo while playing a 1 kHz tone to the caller;
/// `#` stops the recording and the call reports where it went.
const CALL: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const rec = await call.record({ stereo: true });
    call.play("tone:1000/30000");
    const r = await call.collectDigits({ max: 1, firstDigitTimeoutMs: 20000 });
    const done = await rec.stop();
    await call.hangup({ headers: {
      "X-Digit": r.digits,
      "X-Location": done.location,
      "X-Duration": String(done.durationMs),
    } });
  },
};
"##;

/// Records the room with a track per participant; tells each caller who
/// pressed `#` whether the room saw it talk, and stops the recording.
const ROOM: &str = r##"
let room;
let recording;
const talked = new Set();
export default {
  async onConference(conf) {
    room = conf;
    conf.on("talking", (p) => talked.add(p.callId));
  },
  async onCall(call) {
    await call.answer();
    await room.add(call);
    if (!recording) recording = room.record({ tracks: true });
    call.on("dtmf", async (e) => {
      if (e.digit !== "#") return;
      const done = await (await recording).stop();
      await call.hangup({ headers: {
        "X-Talked": talked.has(call.id) ? "yes" : "no",
        "X-Location": done.location,
        "X-Tracks": done.tracks.join(","),
        "X-Duration": String(done.durationMs),
      } });
    });
  },
};
"##;

async fn engine() -> TestEngine {
    TestEngine::with_app(APP, &[("call", CALL), ("room", ROOM)]).await
}

async fn bye_headers(call: &switchboard_testagent::Call) -> Vec<(String, String)> {
    match call.wait_ended(T).await.expect("the scenario hangs up") {
        EndReason::RemoteBye { headers } => headers,
        other => panic!("expected a BYE from the engine, got {other:?}"),
    }
}

fn header(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

/// Channels of a WAV file, de-interleaved, and its rate.
fn read_wav(path: &Path) -> (u32, Vec<Vec<i16>>) {
    let mut reader = hound::WavReader::open(path).expect("a readable WAV file");
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let mut out = vec![Vec::new(); channels];
    for (i, s) in samples.into_iter().enumerate() {
        out[i % channels].push(s);
    }
    (spec.sample_rate, out)
}

/// Resamples crudely to 8 kHz by picking samples: enough for Goertzel on
/// tones well below 4 kHz from a 16 or 48 kHz file.
fn to_8k(rate: u32, samples: &[i16]) -> Vec<i16> {
    let step = (rate / 8000).max(1) as usize;
    samples.iter().step_by(step).copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stereo_call_recording_keeps_caller_and_callee_apart() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(&sb.uri("call"), CallOptions::default())
        .await
        .unwrap();
    call.play_tone(440.0, 0.3);
    // Both directions flowing for a while before the key.
    call.wait_for_tone(1000.0, min_db_over(20.0, &[440.0]), T)
        .await
        .expect("the caller hears the scenario's tone");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let _ = call.send_dtmf("5").await;
    let headers = bye_headers(&call).await;
    assert_eq!(header(&headers, "X-Digit"), "5");
    let location = header(&headers, "X-Location");
    let duration: u64 = header(&headers, "X-Duration").parse().unwrap();
    assert!(
        Path::new(&location).starts_with(sb.recordings.path()),
        "{location} is under the recordings directory"
    );
    assert!(duration >= 1000, "recorded {duration} ms");

    let (rate, channels) = read_wav(Path::new(&location));
    assert_eq!(channels.len(), 2, "stereo");
    let (left, right) = (to_8k(rate, &channels[0]), to_8k(rate, &channels[1]));
    let length_ms = left.len() as u64 / 8;
    assert!(
        length_ms + 100 >= duration && length_ms <= duration + 100,
        "file {length_ms} ms, reported {duration} ms"
    );
    // Skip the first 200 ms (the caller's first packets are on their way).
    let (left, right) = (&left[1600..], &right[1600..]);
    let caller = tone_ratio_db(left, 440.0, 1000.0);
    let heard = tone_ratio_db(right, 1000.0, 440.0);
    assert!(caller > 20.0, "left: 440 Hz over 1 kHz by {caller:.1} dB");
    assert!(heard > 20.0, "right: 1 kHz over 440 Hz by {heard:.1} dB");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_recording_has_the_mix_and_a_track_per_participant() {
    let sb = engine().await;
    let (alice_hz, bob_hz) = (440.0, 1000.0);
    let alice_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let bob_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let alice = alice_ua
        .call(&sb.uri("room_rec"), CallOptions::default())
        .await
        .unwrap();
    alice.play_tone(alice_hz, 0.3);
    let bob = bob_ua
        .call(&sb.uri("room_rec"), CallOptions::default())
        .await
        .unwrap();
    bob.play_tone(bob_hz, 0.3);
    alice
        .wait_for_tone(bob_hz, min_db_over(20.0, &[alice_hz]), T)
        .await
        .expect("alice hears bob");
    bob.wait_for_tone(alice_hz, min_db_over(20.0, &[bob_hz]), T)
        .await
        .expect("bob hears alice");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let _ = alice.send_dtmf("#").await;
    let headers = bye_headers(&alice).await;
    assert_eq!(header(&headers, "X-Talked"), "yes", "talking event seen");
    let location = header(&headers, "X-Location");
    let tracks: Vec<String> = header(&headers, "X-Tracks")
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(tracks.len(), 2, "one track per participant: {tracks:?}");
    for path in tracks.iter().chain(std::iter::once(&location)) {
        assert!(
            Path::new(path).starts_with(sb.recordings.path()),
            "{path} is under the recordings directory"
        );
    }

    // The mix has both voices.
    let (rate, mix) = read_wav(Path::new(&location));
    assert_eq!(mix.len(), 1, "the mix is mono");
    let mix = to_8k(rate, &mix[0]);
    assert!(mix.len() >= 8000, "at least a second of mix");
    for (who, hz) in [("alice", alice_hz), ("bob", bob_hz)] {
        let over_noise = tone_ratio_db(&mix, hz, 2200.0);
        assert!(over_noise > 20.0, "{who} in the mix: {over_noise:.1} dB");
    }
    // Each track is one participant only.
    let mut seen = Vec::new();
    for path in &tracks {
        let (rate, ch) = read_wav(Path::new(path));
        let track = to_8k(rate, &ch[0]);
        let skip = track.len().min(1600);
        let track = &track[skip..];
        let alice_db = tone_ratio_db(track, alice_hz, bob_hz);
        seen.push(if alice_db > 20.0 {
            "alice"
        } else if alice_db < -20.0 {
            "bob"
        } else {
            panic!("{path}: neither alone ({alice_db:.1} dB)")
        });
    }
    seen.sort();
    assert_eq!(seen, ["alice", "bob"]);
    bob.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}
