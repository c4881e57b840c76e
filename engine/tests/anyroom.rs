//! The anyroom example end to end, as callers hear it: real SIP and RTP on
//! loopback, real espeak-ng speech, and audio checked by Goertzel analysis.

mod common;

use common::{TestEngine, T};
use switchboard_testagent::analysis::{min_db_over, pure_tone, tone_dbfs};
use switchboard_testagent::{Agent, AgentConfig, CallOptions};

const ALICE_HZ: f32 = 440.0;
const BOB_HZ: f32 = 1000.0;
const CAROL_HZ: f32 = 700.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_with_the_same_code_hear_each_other_but_not_themselves() {
    let sb = TestEngine::anyroom().await;

    // Alice dials anything over UDP: the gateway greets her before she keys
    // a digit, then she keys 1234#.
    let alice_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let alice = alice_ua
        .call(&sb.uri("5550100"), CallOptions::default())
        .await
        .expect("gateway answers");
    let prompt = alice
        .wait_for_speech(T)
        .await
        .expect("welcome prompt is heard before any digit");
    println!("alice heard the prompt: {prompt}");
    alice.send_dtmf("1234#").await.unwrap();
    alice.play_tone(ALICE_HZ, 0.3);

    // Bob dials conf_1234 directly over TCP: no prompt, straight into the room.
    let bob_ua = Agent::bind(AgentConfig::tcp()).await.unwrap();
    let bob = bob_ua
        .call(&sb.tcp_uri("conf_1234"), CallOptions::default())
        .await
        .expect("room answers");
    bob.wait_for_speech(T)
        .await
        .expect("bob hears how many are on the call");
    bob.play_tone(BOB_HZ, 0.3);

    // Carol keys another code: a room of her own.
    let carol_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let carol = carol_ua
        .call(&sb.uri("5550101"), CallOptions::default())
        .await
        .unwrap();
    carol.wait_for_speech(T).await.unwrap();
    carol.send_dtmf("5678#").await.unwrap();
    carol.play_tone(CAROL_HZ, 0.3);

    let heard = alice
        .wait_for_tone(BOB_HZ, min_db_over(20.0, &[ALICE_HZ, CAROL_HZ]), T)
        .await
        .expect("alice hears bob, not herself");
    println!("alice: {heard}");
    let heard = bob
        .wait_for_tone(ALICE_HZ, min_db_over(20.0, &[BOB_HZ, CAROL_HZ]), T)
        .await
        .expect("bob hears alice, not himself");
    println!("bob: {heard}");

    // Carol's room is silent once her announcement is over: she hears
    // neither of the others (nor herself).
    carol
        .wait_for_silence(-50.0, T)
        .await
        .expect("carol's room is silent");
    let last = carol.last(std::time::Duration::from_millis(1000));
    for hz in [ALICE_HZ, BOB_HZ, CAROL_HZ] {
        let level = tone_dbfs(&last, hz);
        assert!(level < -45.0, "carol hears {hz} Hz at {level:.1} dBFS");
    }
    // ...while alice still hears bob.
    alice
        .wait_for_tone(BOB_HZ, min_db_over(20.0, &[ALICE_HZ]), T)
        .await
        .unwrap();

    // Bob hangs up: he leaves the room and alice stops hearing him.
    bob.hangup().await.expect("BYE answered");
    alice
        .wait_for_silence_of(BOB_HZ, T)
        .await
        .expect("bob's tone stops after his BYE");

    alice.hangup().await.unwrap();
    carol.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_one_out_ends_the_room_and_the_next_caller_opens_a_new_one() {
    let sb = TestEngine::anyroom().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    for round in 0..2 {
        let a = ua
            .call(&sb.uri("conf_42"), CallOptions::default())
            .await
            .unwrap();
        a.wait_for_speech(T).await.unwrap();
        a.play_tone(ALICE_HZ, 0.3);
        let b_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
        let b = b_ua
            .call(&sb.uri("conf_42"), CallOptions::default())
            .await
            .unwrap();
        b.wait_for_tone(ALICE_HZ, pure_tone(ALICE_HZ, 20.0), T)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        a.hangup().await.unwrap();
        b.hangup().await.unwrap();
        sb.wait_idle().await;
    }
    sb.engine.shutdown().await;
}

/// A caller who hangs up during the room's greeting (before `room.add`) must
/// not take the room down with them: the others stay, and the next caller
/// still joins. (A hang-up that lands while `room.add` is in flight rejects
/// it with `CALL_ENDED`, which is also not a scenario failure.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_during_the_greeting_leaves_the_room_intact() {
    let sb = TestEngine::anyroom().await;
    let alice_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let alice = alice_ua
        .call(&sb.uri("conf_77"), CallOptions::default())
        .await
        .unwrap();
    alice.wait_for_speech(T).await.unwrap();
    alice.play_tone(ALICE_HZ, 0.3);

    let bob_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let bob = bob_ua
        .call(&sb.uri("conf_77"), CallOptions::default())
        .await
        .unwrap();
    bob.wait_for_speech(T).await.unwrap();
    bob.hangup().await.expect("bob leaves mid-greeting");

    let carol_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let carol = carol_ua
        .call(&sb.uri("conf_77"), CallOptions::default())
        .await
        .unwrap();
    carol.play_tone(CAROL_HZ, 0.3);
    carol
        .wait_for_tone(ALICE_HZ, pure_tone(ALICE_HZ, 20.0), T)
        .await
        .expect("carol joins alice's room");
    alice
        .wait_for_tone(CAROL_HZ, pure_tone(CAROL_HZ, 20.0), T)
        .await
        .expect("alice is still in the room and hears carol");
    assert!(!alice.is_ended(), "alice's call survives bob's hang-up");
    alice.hangup().await.unwrap();
    carol.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}
