//! Media quality end to end through the engine: an Opus caller and a G.711
//! caller in one room, DTMF over the three transports (RFC 4733, SIP INFO,
//! in-band tones) each counted once, and key tones kept out of the room.

mod common;

use common::{TestEngine, T};
use switchboard_testagent::analysis::{min_db_over, tone_dbfs};
use switchboard_testagent::{Agent, AgentConfig, CallOptions, Codec};

const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1000.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_keyed_over_three_transports_reaches_an_opus_room() {
    let sb = TestEngine::anyroom().await;

    // Bob joins room 4712 directly, over Opus.
    let bob_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let bob = bob_ua
        .call(
            &sb.uri("conf_4712"),
            CallOptions::default().codecs([Codec::Opus, Codec::Pcmu]),
        )
        .await
        .expect("the room answers");
    assert_eq!(bob.codec(), Some(Codec::Opus), "the engine prefers Opus");
    bob.wait_for_speech(T).await.expect("bob's announcement");
    bob.play_tone(BOB_HZ, 0.3);

    // Alice (G.711) keys the code at the gateway: 4 as an RFC 4733 event,
    // 7 as a SIP INFO, 1 in-band, 2 and # as events. A digit lost or
    // counted twice would send her to another room.
    let alice_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let alice = alice_ua
        .call(&sb.uri("5550199"), CallOptions::default())
        .await
        .expect("the gateway answers");
    assert_eq!(alice.codec(), Some(Codec::Pcmu));
    alice.wait_for_speech(T).await.expect("the welcome prompt");
    alice.send_dtmf("4").await.unwrap();
    alice.send_info_dtmf('7').await.expect("INFO answered");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    alice.send_dtmf_inband("1").await.unwrap();
    alice.send_dtmf("2#").await.unwrap();
    alice.play_tone(ALICE_HZ, 0.3);

    // 8 kHz G.711 and 48 kHz Opus hear each other at the right pitch.
    let heard = bob
        .wait_for_tone(ALICE_HZ, min_db_over(20.0, &[BOB_HZ, 880.0]), T)
        .await
        .expect("bob (Opus) hears alice (G.711) in room 4712");
    println!("bob: {heard}");
    let heard = alice
        .wait_for_tone(BOB_HZ, min_db_over(20.0, &[ALICE_HZ, 2000.0]), T)
        .await
        .expect("alice hears bob");
    println!("alice: {heard}");

    // Keys pressed in the room reach the scenario, not the other ears:
    // bob hears alice's voice around the keys but no key tone.
    let before = std::time::Instant::now();
    alice.send_dtmf_inband("159").await.unwrap();
    let sent = std::time::Instant::now();
    bob.wait_for_tone(ALICE_HZ, min_db_over(20.0, &[BOB_HZ]), T)
        .await
        .expect("alice's voice is back after the keys");
    // The keys' time at bob's end, with the path's delay.
    let during = bob.recording_between(before, sent + std::time::Duration::from_millis(200));
    for hz in [697.0, 1209.0, 770.0, 1336.0, 852.0, 1477.0] {
        let level = tone_dbfs(&during, hz);
        assert!(
            level < -40.0,
            "bob hears the key tone {hz} Hz at {level:.1} dBFS"
        );
    }

    alice.hangup().await.unwrap();
    bob.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}
