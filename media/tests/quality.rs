//! Media quality end to end over real UDP: mixed-codec rooms, wideband
//! conversion, loss and reordering, DTMF over the three transports, talking
//! events, gain, recordings and shared encodes. Callers are plain sockets
//! (tests/common); what they hear is measured with Goertzel filters.

mod common;

use std::time::Duration;

use common::*;
use switchboard_media::analysis::{goertzel_power, rms};
use switchboard_media::{
    Codec, ConferenceEvent, ConferenceHandle, DtmfSource, LegEvent, LegEvents, LegHandle,
    MediaEngine, ParticipantOptions, RecordOptions,
};

fn join(
    engine: &MediaEngine,
    conf: &ConferenceHandle,
    caller: &Caller,
    opts: ParticipantOptions,
) -> (LegHandle, LegEvents) {
    let socket = engine.allocate_socket().unwrap();
    let local = socket.local_addr();
    let (leg, events) = engine
        .start_leg(socket, params_for(caller.addr, caller.codec, "caller"))
        .unwrap();
    conf.add(&leg, opts).unwrap();
    caller.send_to(local);
    (leg, events)
}

/// `caller` hears `yes` clearly and `no` at least 20 dB below it.
fn hears(caller: &Caller, yes: f64, no: f64) -> Result<(), String> {
    let (py, pn) = (caller.power(yes), caller.power(no));
    if py > HEARD && db(py, pn) >= 20.0 {
        Ok(())
    } else {
        Err(format!(
            "{yes} Hz: {py:.3e}, {no} Hz: {pn:.3e}, ratio {:.1} dB",
            db(py, pn)
        ))
    }
}

fn tone_caller(codec: Codec, hz: f64) -> Caller {
    Caller::with(CallerOptions {
        codec,
        tone_hz: Some(hz),
        ..CallerOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_and_g711_legs_hear_each_other_at_the_right_pitch() {
    let engine = engine(32_000..=32_099, 2);
    let conf = engine.create_conference("mixed");
    let opus = tone_caller(Codec::Opus, 440.0);
    let pcmu = tone_caller(Codec::Pcmu, 1000.0);
    let (_a, _) = join(&engine, &conf, &opus, ParticipantOptions::default());
    let (_b, _) = join(&engine, &conf, &pcmu, ParticipantOptions::default());
    // The 8 kHz caller's 1000 Hz reaches the 48 kHz leg at 1000 Hz (not at
    // 6000 Hz or 167 Hz, as a missing or wrong conversion would give).
    eventually("the Opus caller hears the G.711 one", TIMEOUT, || {
        hears(&opus, 1000.0, 440.0)?;
        hears(&opus, 1000.0, 6000.0)?;
        hears(&opus, 1000.0, 1200.0)
    })
    .await;
    eventually("the G.711 caller hears the Opus one", TIMEOUT, || {
        hears(&pcmu, 440.0, 1000.0)
    })
    .await;
    assert_eq!(conf.rate(), 48_000);
    engine.shutdown();
}

/// 10 % random loss and 10 % reordering on a talker: the listener's tone
/// stays continuous (no gap over 40 ms) thanks to the jitter buffer's
/// reordering and concealment (G.711 pitch repetition, Opus FEC/PLC).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tone_stays_continuous_through_loss_and_reordering() {
    for (codec, base) in [(Codec::Pcmu, 32_100u16), (Codec::Opus, 32_200)] {
        let engine = engine(base..=base + 99, 1);
        let conf = engine.create_conference("lossy");
        let talker = Caller::with(CallerOptions {
            codec,
            tone_hz: Some(500.0),
            loss: 0.10,
            reorder: 0.10,
        });
        let listener = Caller::new(None);
        let (leg, _) = join(&engine, &conf, &talker, ParticipantOptions::default());
        let (_l, _) = join(&engine, &conf, &listener, ParticipantOptions::default());
        eventually("the tone is heard", TIMEOUT, || {
            hears(&listener, 500.0, 900.0)
        })
        .await;
        // Five seconds of impaired stream.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let audio = listener.recent_audio(4000);
        assert!(audio.len() >= 4 * 8000 - 800, "{} samples", audio.len());
        // The tone's RMS is ~5600 (8000 peak, level normalisation may move
        // it a little); a gap is anything below a fifth of that.
        let level = rms(&audio);
        assert!(level > 2000.0, "{codec:?}: level {level}");
        let gap = longest_gap_ms(&audio, 8000, level / 5.0);
        assert!(gap <= 40, "{codec:?}: a {gap} ms gap in the tone");
        let stats = leg.stats();
        assert!(stats.lost > 10, "{codec:?}: {stats:?}");
        assert!(stats.concealed > 0 || stats.recovered > 0, "{stats:?}");
        if codec == Codec::Opus {
            assert!(stats.recovered > 0, "Opus FEC used: {stats:?}");
        }
        engine.shutdown();
    }
}

async fn next_digit(events: &mut LegEvents) -> (char, DtmfSource) {
    match within("a digit", events.recv()).await {
        Some(LegEvent::Dtmf(d)) => (d.digit, d.source),
        other => panic!("expected a digit, got {other:?}"),
    }
}

/// Telephone-event packets of one key press (three end packets).
fn rfc4733_press(caller: &Caller, to: std::net::SocketAddr, seq: &mut u16, ts: u32, event: u8) {
    use switchboard_media::dtmf::TelephoneEvent;
    use switchboard_media::rtp::RtpHeader;
    for (i, (end, duration)) in [
        (false, 160),
        (false, 320),
        (false, 480),
        (true, 800),
        (true, 800),
        (true, 800),
    ]
    .into_iter()
    .enumerate()
    {
        let mut buf = [0u8; 16];
        RtpHeader {
            marker: i == 0,
            payload_type: 101,
            sequence: *seq,
            timestamp: ts,
            ssrc: 0x4242,
        }
        .write(&mut buf);
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .write(&mut buf[12..]);
        caller.send_raw(to, &buf);
        *seq = seq.wrapping_add(1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_from_each_transport_is_reported_exactly_once() {
    let engine = engine(32_300..=32_399, 1);
    let phone = Caller::new(None);
    let (leg, mut events) = engine
        .start_leg(
            engine.allocate_socket().unwrap(),
            params(phone.addr, "dtmf"),
        )
        .unwrap();
    let to = leg.local_addr();
    phone.send_to(to);
    let mut seq = 7u16;

    // RFC 4733 alone.
    rfc4733_press(&phone, to, &mut seq, 1000, 1);
    assert_eq!(next_digit(&mut events).await, ('1', DtmfSource::Rfc4733));
    // SIP INFO alone (the engine parses the body and injects the key).
    let info = switchboard_media::dtmf::info::parse_info(
        "application/dtmf-relay",
        b"Signal=2\r\nDuration=100\r\n",
    )
    .unwrap();
    leg.inject_dtmf(info.digit, DtmfSource::SipInfo, info.duration_ms)
        .unwrap();
    assert_eq!(next_digit(&mut events).await, ('2', DtmfSource::SipInfo));
    // In-band tones in the G.711 audio, sent by the phone.
    phone.send_inband("3#", 100, 100);
    assert_eq!(next_digit(&mut events).await, ('3', DtmfSource::Inband));
    assert_eq!(next_digit(&mut events).await, ('#', DtmfSource::Inband));
    // The same press over INFO and RFC 4733: once, tagged with the first.
    leg.inject_dtmf('9', DtmfSource::SipInfo, 100).unwrap();
    rfc4733_press(&phone, to, &mut seq, 9000, 9);
    assert_eq!(next_digit(&mut events).await, ('9', DtmfSource::SipInfo));
    // And over in-band and INFO.
    phone.send_inband("5", 120, 100);
    leg.inject_dtmf('5', DtmfSource::SipInfo, 120).unwrap();
    let (d, _) = next_digit(&mut events).await;
    assert_eq!(d, '5');
    // Nothing else comes: no duplicate of any of them.
    eventually("in-band digits sent", TIMEOUT, || {
        (!phone.inband_pending())
            .then_some(())
            .ok_or("pending".into())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(events.try_recv(), None);
    assert!(leg.inject_dtmf('x', DtmfSource::SipInfo, 100).is_err());
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_dtmf_reaches_the_caller_not_the_room() {
    let engine = engine(32_400..=32_499, 1);
    let conf = engine.create_conference("keys");
    let presser = tone_caller(Codec::Pcmu, 440.0);
    let listener = Caller::new(None);
    let (_p, mut events) = join(&engine, &conf, &presser, ParticipantOptions::default());
    let (_l, _) = join(&engine, &conf, &listener, ParticipantOptions::default());
    eventually("the listener hears the presser", TIMEOUT, || {
        hears(&listener, 440.0, 1000.0)
    })
    .await;
    // Keys in the middle of talking: 400 ms tones, 200 ms apart.
    presser.send_inband("159", 400, 200);
    let mut digits = String::new();
    for _ in 0..3 {
        digits.push(next_digit(&mut events).await.0);
    }
    assert_eq!(digits, "159");
    // The listener heard the 440 Hz voice around the keys but none of the
    // key tones: '1' 697+1209, '5' 770+1336, '9' 852+1477.
    let heard = listener.recent_audio(2500);
    let voice = goertzel_power(&heard, 8000, 440.0);
    for f in [697.0, 1209.0, 770.0, 1336.0, 852.0, 1477.0] {
        let p = goertzel_power(&heard, 8000, f);
        assert!(
            db(voice, p) > 30.0,
            "{f} Hz audible: {p:.3e} vs voice {voice:.3e}"
        );
    }
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_events_follow_the_voice_without_flapping() {
    let engine = engine(32_500..=32_599, 1);
    let conf = engine.create_conference("talk");
    let mut events = conf.take_events().expect("the event stream");
    assert!(conf.take_events().is_none(), "one stream per conference");
    let talker = Caller::new(None);
    let other = Caller::new(None);
    let (leg, _) = join(&engine, &conf, &talker, ParticipantOptions::default());
    let (_o, _) = join(&engine, &conf, &other, ParticipantOptions::default());
    // Speech-like: bursts of 200 ms with 100 ms pauses, for 2 s. The state
    // is checked while the phrase goes on (a busy machine may deliver the
    // events late, so the phrase is not over-run before reading them).
    let phrase = async {
        for _ in 0..7 {
            talker.set_tone(Some(300.0));
            tokio::time::sleep(Duration::from_millis(200)).await;
            talker.set_tone(None);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let first = async {
        let first = within("talking", events.recv()).await;
        // Still mid-phrase: the state agrees with the event.
        (first, conf.talking(leg.id()))
    };
    let (_, (first, talking_mid_phrase)) = tokio::join!(phrase, first);
    assert_eq!(first, Some(ConferenceEvent::Talking(leg.id())));
    assert!(talking_mid_phrase, "talking while the phrase goes on");
    let second = within("silent", events.recv()).await;
    assert_eq!(second, Some(ConferenceEvent::Silent(leg.id())));
    assert!(!conf.talking(leg.id()));
    // Exactly one talk spurt for the whole phrase.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events.try_recv(), None);
    conf.close();
    assert_eq!(within("events end", events.recv()).await, None);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gain_and_level_normalisation() {
    let engine = engine(32_600..=32_699, 1);
    let conf = engine.create_conference("levels");
    // A quiet and a loud caller, alternately; the listener hears both at a
    // similar level.
    let quiet = Caller::with(CallerOptions {
        tone_hz: Some(400.0),
        ..CallerOptions::default()
    });
    let listener = Caller::new(None);
    let (q, _) = join(&engine, &conf, &quiet, ParticipantOptions::default());
    let (_l, _) = join(&engine, &conf, &listener, ParticipantOptions::default());
    eventually("heard", TIMEOUT, || hears(&listener, 400.0, 900.0)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = listener.power(400.0);
    // +12 dB of user gain on top: about 16 times the power.
    conf.add(
        &q,
        ParticipantOptions {
            gain_db: 12.0,
            ..ParticipantOptions::default()
        },
    )
    .unwrap();
    eventually("louder", TIMEOUT, || {
        let now = listener.power(400.0);
        let gain = db(now, before);
        // The limiter and the normaliser may shave a little off.
        (gain > 6.0).then_some(()).ok_or(format!("{gain:.1} dB"))
    })
    .await;
    engine.shutdown();
}

fn read_wav(path: &std::path::Path) -> (hound::WavSpec, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    (spec, r.into_samples().map(|s| s.unwrap()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_have_the_right_tone_and_length() {
    let dir = std::env::temp_dir().join(format!("sb-media-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let engine = engine(32_700..=32_799, 1);
    let conf = engine.create_conference("rec");
    let a = tone_caller(Codec::Pcmu, 600.0);
    let b = tone_caller(Codec::Opus, 1100.0);
    let (leg_a, _) = join(&engine, &conf, &a, ParticipantOptions::default());
    let (_leg_b, _) = join(&engine, &conf, &b, ParticipantOptions::default());
    eventually("A hears B", TIMEOUT, || hears(&a, 1100.0, 600.0)).await;

    let stereo = leg_a
        .record(
            dir.join("a.wav"),
            RecordOptions {
                stereo: true,
                tracks: false,
            },
        )
        .unwrap();
    let mix = conf
        .record(
            dir.join("room.wav"),
            RecordOptions {
                stereo: false,
                tracks: true,
            },
        )
        .unwrap();
    assert_ne!(stereo.id(), mix.id());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = within("leg recording", stereo.stop()).await.unwrap();
    let m = within("room recording", mix.stop()).await.unwrap();
    for summary in [&s, &m] {
        assert!((1300..=2500).contains(&summary.duration_ms), "{summary:?}");
    }

    // The leg: A (600 Hz) left, what A hears (B's 1100 Hz) right, 8 kHz.
    let (spec, samples) = read_wav(&s.path);
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let tail = |v: &[i16]| v[v.len() / 3..].to_vec();
    let (l, r) = (tail(&left), tail(&right));
    assert!(
        db(
            goertzel_power(&l, 8000, 600.0),
            goertzel_power(&l, 8000, 1100.0)
        ) > 20.0
    );
    assert!(
        db(
            goertzel_power(&r, 8000, 1100.0),
            goertzel_power(&r, 8000, 600.0)
        ) > 20.0
    );
    assert_eq!(left.len() as u64 * 1000 / 8000, s.duration_ms);

    // The room: both tones, at the room's 48 kHz; one track each.
    let (spec, samples) = read_wav(&m.path);
    assert_eq!((spec.channels, spec.sample_rate), (1, 48_000));
    let t = tail(&samples);
    for f in [600.0, 1100.0] {
        assert!(goertzel_power(&t, 48_000, f) > HEARD, "{f} Hz in the mix");
    }
    assert_eq!(m.tracks.len(), 2, "{m:?}");
    for track in &m.tracks {
        let (spec, samples) = read_wav(track);
        let rate = spec.sample_rate;
        let t = tail(&samples);
        let (p600, p1100) = (
            goertzel_power(&t, rate, 600.0),
            goertzel_power(&t, rate, 1100.0),
        );
        // Each track holds one voice only.
        assert!(
            db(p600, p1100).abs() > 20.0,
            "{track:?}: {p600:.2e} {p1100:.2e}"
        );
    }
    engine.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_ends_when_its_leg_closes() {
    let dir = std::env::temp_dir().join(format!("sb-media-rec2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let engine = engine(32_800..=32_899, 1);
    let phone = tone_caller(Codec::Pcmu, 700.0);
    let (leg, _) = engine
        .start_leg(engine.allocate_socket().unwrap(), params(phone.addr, "r"))
        .unwrap();
    phone.send_to(leg.local_addr());
    let rec = leg
        .record(dir.join("mono.wav"), RecordOptions::default())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    leg.close();
    let summary = within("finalised on close", rec.stop()).await.unwrap();
    let (spec, samples) = read_wav(&summary.path);
    assert_eq!((spec.channels, spec.sample_rate), (1, 8000));
    assert!(summary.duration_ms >= 400, "{summary:?}");
    let t = &samples[samples.len() / 2..];
    assert!(goertzel_power(t, 8000, 700.0) > HEARD);
    assert!(leg
        .record(dir.join("x.wav"), RecordOptions::default())
        .is_err());
    engine.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Twenty listeners and two talkers: listeners get the shared payload,
/// encoded once per codec per tick; only the talkers get private encodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_share_one_encode_per_codec() {
    let engine = engine(32_900..=32_999, 1);
    let conf = engine.create_conference("big");
    let t1 = tone_caller(Codec::Opus, 500.0);
    let t2 = tone_caller(Codec::Pcmu, 800.0);
    let mut callers = vec![];
    for i in 0..20 {
        let codec = if i % 2 == 0 { Codec::Opus } else { Codec::Pcmu };
        callers.push(Caller::with(CallerOptions {
            codec,
            ..CallerOptions::default()
        }));
    }
    let mut legs = vec![join(&engine, &conf, &t1, ParticipantOptions::default())];
    legs.push(join(&engine, &conf, &t2, ParticipantOptions::default()));
    for c in &callers {
        legs.push(join(&engine, &conf, c, ParticipantOptions::default()));
    }
    eventually("listeners hear both talkers", TIMEOUT, || {
        hears(&callers[0], 500.0, 1300.0)?;
        hears(&callers[0], 800.0, 1300.0)?;
        hears(&callers[1], 500.0, 1300.0)?;
        hears(&callers[1], 800.0, 1300.0)
    })
    .await;
    let before = engine.stats().ticks;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = engine.stats().ticks;
    let ticks = (after.ticks - before.ticks) as f64;
    let encodes = (after.encodes - before.encodes) as f64 / ticks;
    let shared = (after.shared_sends - before.shared_sends) as f64 / ticks;
    // 2 talkers + 2 codecs = 4 encodes per tick, not 22.
    assert!(encodes <= 4.5, "{encodes:.2} encodes per tick");
    assert!(shared >= 19.0, "{shared:.2} shared sends per tick");
    engine.shutdown();
}

/// A peer that signals silence with RFC 3389 comfort noise is heard as
/// background noise at the level it gave, not as digital silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comfort_noise_stands_in_for_a_silent_peer() {
    use switchboard_media::rtp::RtpHeader;
    let engine = engine(33_000..=33_099, 1);
    let conf = engine.create_conference("cn");
    let quiet = Caller::new(None);
    let listener = Caller::new(None);
    let (leg, _) = join(&engine, &conf, &quiet, ParticipantOptions::default());
    let (_l, _) = join(&engine, &conf, &listener, ParticipantOptions::default());
    // One SID packet: background at -30 dBov.
    let mut sid = [0u8; 13];
    RtpHeader {
        marker: true,
        payload_type: 13,
        sequence: 1,
        timestamp: 160,
        ssrc: 0x77,
    }
    .write(&mut sid);
    sid[12] = 30;
    quiet.send_raw(leg.local_addr(), &sid);
    eventually("the listener hears the background", TIMEOUT, || {
        let level = rms(&listener.recent_audio(400));
        // -30 dB of full scale is an RMS of about 1036.
        if (600.0..1600.0).contains(&level) {
            Ok(())
        } else {
            Err(format!("rms {level:.0}"))
        }
    })
    .await;
    engine.shutdown();
}

/// G.722 end to end: 16 kHz audio on an 8 kHz RTP clock. A 5 kHz tone
/// (beyond G.711's band) crosses a room between two G.722 legs; what goes
/// out is stamped at 8 kHz (160 per 20 ms packet of 160 bytes), and
/// telephone-event on a G.722 leg runs at 8 kHz both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_legs_carry_wideband_audio_on_an_8khz_clock() {
    use switchboard_media::dtmf::{DtmfReceiver, TelephoneEvent};

    let engine = engine(33_100..=33_199, 1);
    let conf = engine.create_conference("wideband");
    let talker = tone_caller(Codec::G722, 5000.0);
    let listener = Caller::with(CallerOptions {
        codec: Codec::G722,
        ..CallerOptions::default()
    });
    let (talker_leg, mut talker_events) =
        join(&engine, &conf, &talker, ParticipantOptions::default());
    let (listener_leg, _) = join(&engine, &conf, &listener, ParticipantOptions::default());
    assert_eq!(talker_leg.codec(), Codec::G722);
    eventually("the listener hears 5 kHz", TIMEOUT, || {
        hears(&listener, 5000.0, 3000.0)
    })
    .await;
    // A second more of stream to check the stamps on.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let audio: Vec<_> = listener
        .received()
        .into_iter()
        .filter(|r| r.header.payload_type == 9)
        .collect();
    assert!(audio.len() > 20, "{} packets", audio.len());
    assert!(audio.iter().all(|r| r.payload.len() == 160));
    let mut exact = 0;
    for (a, b) in audio.iter().zip(audio.iter().skip(1)) {
        let packets = u32::from(b.header.sequence.wrapping_sub(a.header.sequence));
        let ticks = b.header.timestamp.wrapping_sub(a.header.timestamp);
        // A stalled worker skips whole frames of timestamp, never half ones.
        assert_eq!(ticks % 160, 0, "timestamp step {ticks}");
        assert!(ticks >= 160 * packets, "{ticks} over {packets} packets");
        exact += usize::from(ticks == 160 * packets);
    }
    assert!(
        exact * 10 >= (audio.len() - 1) * 9,
        "{exact} of {}",
        audio.len() - 1
    );

    // Received: 800 units of an 8 kHz clock are 100 ms.
    let mut seq = 7u16;
    rfc4733_press(&talker, talker_leg.local_addr(), &mut seq, 4000, 5);
    match within("a digit", talker_events.recv()).await {
        Some(LegEvent::Dtmf(d)) => {
            assert_eq!((d.digit, d.source), ('5', DtmfSource::Rfc4733));
            assert_eq!(d.duration_ms, 100);
        }
        other => panic!("expected a digit, got {other:?}"),
    }
    // Sent: durations count in 8 kHz units (100 ms = 800).
    let done = listener_leg.send_dtmf("7").unwrap();
    assert_eq!(
        within("digit sent", done).await,
        switchboard_media::PlayOutcome::Finished
    );
    let mut rx = DtmfReceiver::new(8000, 500);
    let mut digits = Vec::new();
    let mut longest = 0;
    for r in listener
        .received()
        .iter()
        .filter(|r| r.header.payload_type == 101)
    {
        let ev = TelephoneEvent::parse(&r.payload).unwrap();
        longest = longest.max(ev.duration);
        rx.on_packet(r.header.timestamp, ev, 0, |d| digits.push(d.digit));
    }
    assert_eq!(digits, vec!['7']);
    assert_eq!(longest, 800);
    engine.shutdown();
}
