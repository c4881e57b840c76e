//! WebRTC legs against a browser stand-in (the test agent's `str0m` peer:
//! full ICE, DTLS active, Opus, RFC 4733): everything a leg does works the
//! same as for an RTP leg — clips, DTMF both ways (de-duplicated, source
//! RFC 4733), recording, conferences with G.711 phones, talking detection.

mod common;

use std::time::Duration;

use common::{engine, params, Caller, LOCALHOST, TIMEOUT};
use switchboard_media::{
    AudioClip, ConferenceEvent, DtmfSource, LegEvent, ParticipantOptions, PlayOptions, PlayOutcome,
    RecordOptions,
};
use switchboard_testagent::analysis::min_db_over;
use switchboard_testagent::WebRtcOffer;

const BROWSER_HZ: f32 = 440.0;
const PHONE_HZ: f64 = 1000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_leg_plays_records_takes_and_sends_dtmf_and_mixes_with_a_phone() {
    let engine = engine(31_400..=31_499, 2);
    let offer = WebRtcOffer::new(LOCALHOST).unwrap();
    let session = engine
        .accept_webrtc_offer(offer.sdp(), &[])
        .expect("the offer is accepted");
    let answer = session.answer_sdp().to_string();
    let (leg, mut events) = engine.start_webrtc_leg(session, "browser").unwrap();
    let browser = offer.accept_answer(&answer).unwrap();
    browser
        .wait_connected(TIMEOUT)
        .await
        .expect("ICE and DTLS connect");
    assert_eq!(leg.codec(), switchboard_media::Codec::Opus);

    // A clip played to the leg is heard by the browser.
    let clip = AudioClip::tone(8000, 700.0, 3000, 8000_i16);
    let playback = leg.play(clip, PlayOptions { looped: true });
    browser
        .wait_for_tone(700.0, min_db_over(20.0, &[BROWSER_HZ]), TIMEOUT)
        .await
        .expect("the browser hears the clip");
    leg.stop_media();
    assert_eq!(playback.await, PlayOutcome::Interrupted);

    // RFC 4733 from the browser: each digit once, tagged RFC 4733.
    browser.send_dtmf("1#").await.unwrap();
    let mut digits = Vec::new();
    while digits.len() < 2 {
        let event = tokio::time::timeout(TIMEOUT, events.recv())
            .await
            .expect("digits arrive")
            .expect("the leg is open");
        let LegEvent::Dtmf(d) = event;
        assert_eq!(d.source, DtmfSource::Rfc4733);
        assert!(d.duration_ms >= 80, "{d:?}");
        digits.push(d.digit);
    }
    assert_eq!(digits, ['1', '#']);

    // Digits sent to the browser arrive as RFC 4733 at its clock.
    leg.send_dtmf("7*").unwrap().await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while browser.digits_received().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            browser.digits_received()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(browser.digits_received(), ['7', '*']);

    // In a room with a G.711 phone: N-1 both ways, talking detection, and
    // the leg's recording at 48 kHz.
    let dir = tempfile_dir();
    let recording = leg
        .record(dir.join("browser.wav"), RecordOptions::default())
        .unwrap();
    let room = engine.create_conference("room");
    let mut room_events = room.take_events().unwrap();
    let phone = Caller::new(Some(PHONE_HZ));
    let (phone_leg, _phone_events) = engine
        .start_leg(
            engine.allocate_socket().unwrap(),
            params(phone.addr, "phone"),
        )
        .unwrap();
    phone.send_to(phone_leg.local_addr());
    room.add(&leg, ParticipantOptions::default()).unwrap();
    room.add(&phone_leg, ParticipantOptions::default()).unwrap();
    browser.play_tone(BROWSER_HZ, 0.3);

    let heard = browser
        .wait_for_tone(PHONE_HZ as f32, min_db_over(20.0, &[BROWSER_HZ]), TIMEOUT)
        .await
        .expect("the browser hears the phone, not itself");
    println!("browser: {heard}");
    common::eventually("the phone to hear the browser, not itself", TIMEOUT, || {
        let (browser, own) = (phone.power(f64::from(BROWSER_HZ)), phone.power(PHONE_HZ));
        let margin = common::db(browser, own);
        if browser > common::HEARD && margin >= 20.0 {
            Ok(())
        } else {
            Err(format!(
                "browser {browser:.3e}, own {own:.3e}: {margin:.1} dB"
            ))
        }
    })
    .await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let event = tokio::time::timeout_at(deadline, room_events.recv())
            .await
            .expect("the browser is detected talking")
            .unwrap();
        if event == ConferenceEvent::Talking(leg.id()) {
            break;
        }
    }
    assert_eq!(room.rate(), 48_000, "an Opus member makes a wideband room");

    let summary = recording.stop().await.unwrap();
    let wav = hound::WavReader::open(&summary.path).unwrap();
    assert_eq!(wav.spec().sample_rate, 48_000);
    assert!(summary.duration_ms > 0, "{summary:?}");

    leg.close();
    phone_leg.close();
    while tokio::time::timeout(TIMEOUT, events.recv())
        .await
        .expect("the leg's events end when it closes")
        .is_some()
    {}
    engine.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_plain_rtp_offer_is_not_webrtc_and_a_garbled_one_is_refused() {
    let engine = engine(31_500..=31_519, 1);
    assert!(!switchboard_media::is_webrtc_offer(
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"
    ));
    let err = engine
        .accept_webrtc_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", &[])
        .unwrap_err();
    println!("{err}");
    engine.shutdown();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-webrtc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
