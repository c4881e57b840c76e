//! Browsers (WebRTC) in the same rooms as phones (G.711), without a
//! browser: a `str0m` peer in the browser's role (full ICE, DTLS active,
//! Opus, RFC 4733 like `RTCDTMFSender`) calls over SIP/UDP with a WebRTC
//! offer; the engine answers ICE-lite with DTLS-SRTP and mixes it N-1 with
//! the phones. Audio is checked by Goertzel analysis on both sides.

mod common;

use common::{TestEngine, T};
use switchboard_testagent::analysis::min_db_over;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};

const BROWSER_HZ: f32 = 440.0;
const PHONE_HZ: f32 = 1000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_and_a_phone_in_one_room_hear_each_other_but_not_themselves() {
    let sb = TestEngine::anyroom().await;

    let browser_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let browser = browser_ua
        .call_webrtc(&sb.uri("conf_1234"), CallOptions::default())
        .await
        .expect("the room answers a WebRTC offer");
    let answer = browser.call.remote_sdp();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    assert!(answer.contains("UDP/TLS/RTP/SAVPF"), "{answer}");
    browser
        .wait_connected(T)
        .await
        .expect("ICE and DTLS connect");
    browser.play_tone(BROWSER_HZ, 0.3);

    let phone_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let phone = phone_ua
        .call(&sb.uri("conf_1234"), CallOptions::default())
        .await
        .expect("the room answers the phone");
    phone
        .wait_for_speech(T)
        .await
        .expect("the phone hears how many are on the call");
    phone.play_tone(PHONE_HZ, 0.3);

    let heard = browser
        .wait_for_tone(PHONE_HZ, min_db_over(20.0, &[BROWSER_HZ]), T)
        .await
        .expect("the browser hears the phone, not itself");
    println!("browser: {heard}");
    let heard = phone
        .wait_for_tone(BROWSER_HZ, min_db_over(20.0, &[PHONE_HZ]), T)
        .await
        .expect("the phone hears the browser, not itself");
    println!("phone: {heard}");

    // The browser hangs up: the phone stops hearing it.
    browser.call.hangup().await.expect("BYE answered");
    phone
        .wait_for_silence_of(BROWSER_HZ, T)
        .await
        .expect("the browser's tone stops after its BYE");
    phone.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_keys_its_code_with_rfc4733_and_lands_in_the_room() {
    let sb = TestEngine::anyroom().await;

    // A phone waits in room 1234.
    let phone_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let phone = phone_ua
        .call(&sb.uri("conf_1234"), CallOptions::default())
        .await
        .expect("the room answers the phone");
    phone.wait_for_speech(T).await.expect("the room announces");
    phone.play_tone(PHONE_HZ, 0.3);

    // The browser dials the gateway, hears its prompt, keys 1234#.
    let browser_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let browser = browser_ua
        .call_webrtc(&sb.uri("5550100"), CallOptions::default())
        .await
        .expect("the gateway answers a WebRTC offer");
    assert_eq!(browser.telephone_event(), Some((110, 48_000)));
    browser
        .wait_connected(T)
        .await
        .expect("ICE and DTLS connect");
    let level = browser
        .wait_for_sound(-40.0, T)
        .await
        .expect("the browser hears the gateway's prompt");
    println!("prompt at {level:.1} dBFS");
    browser.send_dtmf("1234#").await.unwrap();
    browser.play_tone(BROWSER_HZ, 0.3);

    let heard = browser
        .wait_for_tone(PHONE_HZ, min_db_over(20.0, &[BROWSER_HZ]), T)
        .await
        .expect("the browser is in room 1234: it hears the phone");
    println!("browser: {heard}");
    let heard = phone
        .wait_for_tone(BROWSER_HZ, min_db_over(20.0, &[PHONE_HZ]), T)
        .await
        .expect("the phone hears the browser");
    println!("phone: {heard}");

    browser.call.hangup().await.unwrap();
    phone.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}
