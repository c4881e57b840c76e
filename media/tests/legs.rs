//! Legs end to end over real UDP on 127.0.0.1: pacing, symmetric RTP,
//! players, DTMF both ways, closing and shutdown.

mod common;

use std::time::Duration;

use common::*;
use switchboard_media::dtmf::{DtmfReceiver, TelephoneEvent};
use switchboard_media::rtp::RtpHeader;
use switchboard_media::{AudioClip, DtmfSource, LegEvent, MediaError, PlayOptions, PlayOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_leg_sends_paced_silence() {
    let engine = engine(30_000..=30_099, 1);
    let phone = Caller::new(None);
    let socket = engine.allocate_socket().unwrap();
    let port = socket.local_addr().port();
    assert!(port.is_multiple_of(2) && (30_000..=30_099).contains(&port));
    let (leg, _events) = engine
        .start_leg(socket, params(phone.addr, "idle"))
        .unwrap();
    assert_eq!(leg.local_addr().port(), port);

    eventually("100 packets", TIMEOUT, || {
        let n = phone.received_count();
        if n >= 100 {
            Ok(())
        } else {
            Err(format!("{n} so far"))
        }
    })
    .await;
    let got = phone.received();
    let first = &got[0];
    assert!(first.header.marker, "marker on the first packet");
    assert_eq!(first.from, leg.local_addr());
    for (a, b) in got.iter().zip(got.iter().skip(1)).take(99) {
        assert_eq!(b.header.sequence, a.header.sequence.wrapping_add(1));
        // One frame per packet; a worker that stalled past its catch-up
        // bound (a busy machine) skips ticks, and the timestamp follows the
        // clock by whole frames while the sequence stays continuous.
        let step = b.header.timestamp.wrapping_sub(a.header.timestamp);
        assert!(
            step >= 160 && step.is_multiple_of(160),
            "timestamp step {step}"
        );
        assert_eq!(b.header.ssrc, first.header.ssrc);
        assert_eq!(b.header.payload_type, 0);
        assert!(!b.header.marker);
        assert_eq!(b.payload.len(), 160);
        assert!(b.payload.iter().all(|&x| x == 0xFF), "PCMU silence");
    }
    // Paced, not bursted: 99 intervals of 20 ms (catch-up after a stall is
    // bounded, so the span cannot be much shorter).
    let span = got[99].at - got[0].at;
    assert!(
        span >= Duration::from_millis(1500),
        "100 packets in {span:?}"
    );

    // Counters are published at the end of each tick.
    eventually("counters", TIMEOUT, || {
        let (leg_stats, total) = (leg.stats(), engine.stats());
        let ok = leg_stats.packets_out >= 100
            && leg_stats.packets_in == 0
            && total.traffic.packets_out >= 100
            && total.legs == 1
            && total.workers == 1
            && total.ticks.ticks >= 100;
        ok.then_some(()).ok_or(format!("{leg_stats:?} {total:?}"))
    })
    .await;
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_rtp_follows_the_source() {
    let engine = engine(30_100..=30_199, 1);
    let sdp_address = Caller::new(None);
    let real_phone = Caller::new(Some(440.0));
    let socket = engine.allocate_socket().unwrap();
    let local = socket.local_addr();
    let (leg, _events) = engine
        .start_leg(socket, params(sdp_address.addr, "nat"))
        .unwrap();
    eventually("packets to the SDP address", TIMEOUT, || {
        (sdp_address.received_count() > 0)
            .then_some(())
            .ok_or_default()
    })
    .await;
    real_phone.send_to(local);
    eventually("packets to the real source", TIMEOUT, || {
        (real_phone.received_count() > 5)
            .then_some(())
            .ok_or_default()
    })
    .await;
    let before = sdp_address.received_count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sdp_address.received_count() <= before + 1,
        "still sending to the SDP address"
    );
    eventually("packets counted in", TIMEOUT, || {
        let s = leg.stats();
        (s.packets_in > 5).then_some(()).ok_or(format!("{s:?}"))
    })
    .await;
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_finishes_and_is_heard() {
    let engine = engine(30_200..=30_299, 1);
    let phone = Caller::new(None);
    let (leg, _events) = engine
        .start_leg(
            engine.allocate_socket().unwrap(),
            params(phone.addr, "play"),
        )
        .unwrap();
    // A 16 kHz clip: resampled on this thread before it is queued.
    let clip = AudioClip::tone(16_000, 1000.0, 600, 10_000);
    let outcome = within("playback", leg.play(clip, PlayOptions::default())).await;
    assert_eq!(outcome, PlayOutcome::Finished);
    let audio = phone.recent_audio(2000);
    let p = |f| switchboard_media::analysis::goertzel_power(&audio, 8000, f);
    assert!(p(1000.0) > HEARD / 10.0, "tone not heard: {}", p(1000.0));
    assert!(db(p(1000.0), p(440.0)) > 20.0);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_new_play_and_close_interrupt_playbacks() {
    let engine = engine(30_300..=30_399, 1);
    let phone = Caller::new(None);
    let (leg, mut events) = engine
        .start_leg(
            engine.allocate_socket().unwrap(),
            params(phone.addr, "stop"),
        )
        .unwrap();
    let looped = PlayOptions { looped: true };
    let tone = AudioClip::tone(8000, 440.0, 200, 8000);

    let first = leg.play(tone.clone(), looped);
    leg.stop_media();
    assert_eq!(within("stop", first).await, PlayOutcome::Interrupted);

    let first = leg.play(tone.clone(), looped);
    let second = leg.play(tone.clone(), looped);
    assert_eq!(within("replaced", first).await, PlayOutcome::Interrupted);

    let port = leg.local_addr().port();
    leg.close();
    leg.close(); // idempotent
    assert_eq!(within("close", second).await, PlayOutcome::Closed);
    assert!(leg.is_closed());
    assert_eq!(
        within("closed leg", leg.play(tone, looped)).await,
        PlayOutcome::Closed
    );
    assert!(matches!(leg.send_dtmf("1"), Err(MediaError::LegClosed(_))));
    // Events end once the leg is gone; by then its port is free.
    assert_eq!(within("events end", events.recv()).await, None);
    std::net::UdpSocket::bind((LOCALHOST, port)).expect("port released");
    engine.shutdown();
}

/// Telephone-event packet from the phone's side.
fn event_packet(seq: u16, ts: u32, marker: bool, event: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 16];
    RtpHeader {
        marker,
        payload_type: 101,
        sequence: seq,
        timestamp: ts,
        ssrc: 0x5151,
    }
    .write(&mut buf);
    TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
    .write(&mut buf[12..]);
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_dtmf_is_one_event_per_digit() {
    let engine = engine(30_400..=30_499, 1);
    let phone = Caller::new(None);
    let (leg, mut events) = engine
        .start_leg(
            engine.allocate_socket().unwrap(),
            params(phone.addr, "dtmf"),
        )
        .unwrap();
    let to = leg.local_addr();
    let mut seq = 100u16;
    let mut send = |ts: u32, marker: bool, event: u8, end: bool, duration: u16| {
        phone.send_raw(to, &event_packet(seq, ts, marker, event, end, duration));
        seq = seq.wrapping_add(1);
    };
    // '1': complete, with the usual three end packets.
    send(1000, true, 1, false, 160);
    send(1000, false, 1, false, 320);
    send(1000, false, 1, false, 480);
    for _ in 0..3 {
        send(1000, false, 1, true, 800);
    }
    // '#': its start packets were lost; only the ends arrive.
    for _ in 0..3 {
        send(3000, false, 11, true, 960);
    }
    // '5': its end packets were lost; the next event ends it.
    send(5000, true, 5, false, 160);
    send(5000, false, 5, false, 400);
    // '9', then a retransmitted end of '1' arriving very late.
    send(7000, true, 9, false, 160);
    send(7000, false, 9, true, 640);
    send(1000, false, 1, true, 800);
    send(7000, false, 9, true, 640);

    let mut got = Vec::new();
    while got.len() < 4 {
        match within("digits", events.recv()).await {
            Some(LegEvent::Dtmf(d)) => {
                assert_eq!(d.source, DtmfSource::Rfc4733);
                got.push((d.digit, d.duration_ms));
            }
            None => panic!("events ended"),
        }
    }
    assert_eq!(got, vec![('1', 100), ('#', 120), ('5', 50), ('9', 80)]);
    // A later digit is the very next event: nothing extra was reported.
    send(9000, true, 0, false, 160);
    send(9000, false, 0, true, 800);
    match within("sentinel", events.recv()).await {
        Some(LegEvent::Dtmf(d)) => assert_eq!(d.digit, '0'),
        other => panic!("{other:?}"),
    }
    // A digit whose end never comes is reported after the timeout.
    send(11_000, true, 7, false, 160);
    match within("timed out digit", events.recv()).await {
        Some(LegEvent::Dtmf(d)) => assert_eq!(d.digit, '7'),
        other => panic!("{other:?}"),
    }
    // Counters are published at the end of the tick that sent the event.
    eventually("counters", TIMEOUT, || {
        let s = leg.stats();
        // Event packets share the audio sequence space: none counted as lost.
        (s.dtmf_in == 6 && s.lost == 0 && s.packets_in == 18)
            .then_some(())
            .ok_or(format!("{s:?}"))
    })
    .await;
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_dtmf_is_rfc4733_events() {
    let engine = engine(30_500..=30_599, 1);
    let phone = Caller::new(None);
    let (leg, _events) = engine
        .start_leg(
            engine.allocate_socket().unwrap(),
            params(phone.addr, "send"),
        )
        .unwrap();
    assert!(matches!(
        leg.send_dtmf("1x"),
        Err(MediaError::InvalidDtmf(_))
    ));
    // Audio that must pause while the digits go out.
    let _music = leg.play(
        AudioClip::tone(8000, 440.0, 100, 8000),
        PlayOptions { looped: true },
    );
    let done = leg.send_dtmf("1#").unwrap();
    let more = leg.send_dtmf("d").unwrap();
    assert_eq!(within("digits sent", done).await, PlayOutcome::Finished);
    assert_eq!(
        within("queued digits sent", more).await,
        PlayOutcome::Finished
    );

    let got = phone.received();
    let mut rx = DtmfReceiver::new(8000, 500);
    let mut digits = Vec::new();
    let mut ends = 0;
    let mut markers = 0;
    for r in got.iter().filter(|r| r.header.payload_type == 101) {
        let ev = TelephoneEvent::parse(&r.payload).unwrap();
        ends += usize::from(ev.end);
        markers += usize::from(r.header.marker);
        rx.on_packet(r.header.timestamp, ev, 0, |d| digits.push(d.digit));
    }
    assert_eq!(digits, vec!['1', '#', 'D']);
    assert_eq!(ends, 9, "three end packets per digit");
    assert_eq!(markers, 3, "marker on each event's first packet");
    // One stream: sequence numbers stay contiguous across audio and events.
    for (a, b) in got.iter().zip(got.iter().skip(1)) {
        assert_eq!(b.header.sequence, a.header.sequence.wrapping_add(1));
    }
    // No music between the first and last event packet.
    let first = got
        .iter()
        .position(|r| r.header.payload_type == 101)
        .unwrap();
    let last = got
        .iter()
        .rposition(|r| r.header.payload_type == 101)
        .unwrap();
    for r in &got[first..last] {
        if r.header.payload_type == 0 {
            assert!(r.payload.iter().all(|&b| b == 0xFF), "audio during DTMF");
        }
    }
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_goes_in_band_without_telephone_event() {
    let engine = engine(30_600..=30_699, 1);
    let phone = Caller::new(None);
    let mut p = params(phone.addr, "inband");
    p.dtmf_payload_type = None;
    let (leg, _events) = engine
        .start_leg(engine.allocate_socket().unwrap(), p)
        .unwrap();
    assert_eq!(
        within("digit", leg.send_dtmf("5").unwrap()).await,
        PlayOutcome::Finished
    );
    let audio = phone.recent_audio(1000);
    let power = |f| switchboard_media::analysis::goertzel_power(&audio, 8000, f);
    // '5' = 770 Hz + 1336 Hz.
    assert!(db(power(770.0), power(697.0)) > 20.0);
    assert!(db(power(1336.0), power(1209.0)) > 20.0);
    assert!(phone.received().iter().all(|r| r.header.payload_type == 0));
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_everything() {
    let engine = engine(30_700..=30_799, 2);
    let phone = Caller::new(None);
    let (leg, mut events) = engine
        .start_leg(engine.allocate_socket().unwrap(), params(phone.addr, "bye"))
        .unwrap();
    let conf = engine.create_conference("room");
    let playing = leg.play(
        AudioClip::tone(8000, 440.0, 100, 8000),
        PlayOptions { looped: true },
    );
    let conf_playing = conf.play(
        AudioClip::tone(8000, 440.0, 100, 8000),
        PlayOptions { looped: true },
    );
    eventually("leg running", TIMEOUT, || {
        (phone.received_count() > 3).then_some(()).ok_or_default()
    })
    .await;
    engine.shutdown();
    engine.shutdown(); // idempotent
    assert_eq!(within("leg playback", playing).await, PlayOutcome::Closed);
    assert_eq!(
        within("conference playback", conf_playing).await,
        PlayOutcome::Closed
    );
    assert_eq!(within("events end", events.recv()).await, None);
    assert!(leg.is_closed());
    assert!(matches!(
        engine.allocate_socket(),
        Err(MediaError::ShutDown)
    ));
    assert!(matches!(
        conf.add(&leg, Default::default()),
        Err(MediaError::ShutDown)
    ));
    assert_eq!(
        within(
            "play after shutdown",
            conf.play(AudioClip::silence(8000, 20), PlayOptions::default())
        )
        .await,
        PlayOutcome::Closed
    );
}

trait OkOrDefault {
    fn ok_or_default(self) -> Result<(), String>;
}

impl OkOrDefault for Option<()> {
    fn ok_or_default(self) -> Result<(), String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}
