//! Conferences end to end: plain UDP sockets act as callers sending G.711
//! sine tones; what each one hears is measured with Goertzel filters.

mod common;

use common::*;
use switchboard_media::{
    AudioClip, ConferenceHandle, LegEvents, LegHandle, MediaEngine, MediaError, ParticipantOptions,
    PlayOptions, PlayOutcome,
};

const A_HZ: f64 = 440.0;
const B_HZ: f64 = 1000.0;

fn join(
    engine: &MediaEngine,
    conf: &ConferenceHandle,
    caller: &Caller,
    opts: ParticipantOptions,
) -> (LegHandle, LegEvents) {
    let socket = engine.allocate_socket().unwrap();
    let local = socket.local_addr();
    let (leg, events) = engine
        .start_leg(socket, params(caller.addr, "caller"))
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

fn hears_nothing_at(caller: &Caller, freq: f64) -> Result<(), String> {
    let p = caller.power(freq);
    if p < HEARD / 100.0 {
        Ok(())
    } else {
        Err(format!("{freq} Hz still at {p:.3e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_minus_one_over_udp() {
    // Two workers: legs are spread over both and move to the conference's.
    let engine = engine(31_000..=31_099, 2);
    let conf = engine.create_conference("room-1");
    assert_eq!(conf.name(), "room-1");
    let a = Caller::new(Some(A_HZ));
    let b = Caller::new(Some(B_HZ));
    let c = Caller::new(None);
    let (_leg_a, _) = join(&engine, &conf, &a, ParticipantOptions::default());
    let (leg_b, _) = join(&engine, &conf, &b, ParticipantOptions::default());
    let (_leg_c, _) = join(&engine, &conf, &c, ParticipantOptions::default());

    eventually("A hears B only", TIMEOUT, || hears(&a, B_HZ, A_HZ)).await;
    eventually("B hears A only", TIMEOUT, || hears(&b, A_HZ, B_HZ)).await;
    eventually("C hears both", TIMEOUT, || {
        hears(&c, A_HZ, 700.0)?;
        hears(&c, B_HZ, 700.0)
    })
    .await;
    assert_eq!(conf.participant_count(), 3);

    conf.remove(&leg_b);
    eventually("A no longer hears B", TIMEOUT, || {
        hears_nothing_at(&a, B_HZ)
    })
    .await;
    eventually("C no longer hears B", TIMEOUT, || {
        hears_nothing_at(&c, B_HZ)?;
        hears(&c, A_HZ, B_HZ)
    })
    .await;
    // B is a standalone leg again: silence, and its tone goes nowhere.
    eventually("B hears nothing", TIMEOUT, || hears_nothing_at(&b, A_HZ)).await;
    assert_eq!(conf.participant_count(), 2);

    let stats = engine.stats();
    assert_eq!(stats.conferences, 1);
    assert_eq!(stats.legs, 3);
    assert!(stats.traffic.packets_in > 20, "{stats:?}");
    assert!(
        stats.traffic.packets_out >= stats.traffic.packets_in,
        "{stats:?}"
    );
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_and_deaf_participants() {
    let engine = engine(31_100..=31_199, 1);
    let conf = engine.create_conference("room-2");
    let a = Caller::new(Some(A_HZ));
    let b = Caller::new(Some(B_HZ));
    let (leg_a, _) = join(
        &engine,
        &conf,
        &a,
        ParticipantOptions {
            muted: true,
            ..ParticipantOptions::default()
        },
    );
    let (_leg_b, _) = join(
        &engine,
        &conf,
        &b,
        ParticipantOptions {
            deaf: true,
            ..ParticipantOptions::default()
        },
    );
    // A (muted) hears B; B (deaf) hears nothing, A is not heard anyway.
    eventually("muted A hears B", TIMEOUT, || hears(&a, B_HZ, A_HZ)).await;
    eventually("deaf B hears nothing", TIMEOUT, || {
        hears_nothing_at(&b, A_HZ)?;
        hears_nothing_at(&b, B_HZ)
    })
    .await;
    // Adding again updates the options: A unmuted; B is still deaf.
    conf.add(&leg_a, ParticipantOptions::default()).unwrap();
    let c = Caller::new(None);
    let (_leg_c, _) = join(&engine, &conf, &c, ParticipantOptions::default());
    eventually("C hears unmuted A", TIMEOUT, || hears(&c, A_HZ, 700.0)).await;
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conference_player_and_private_prompt() {
    let engine = engine(31_200..=31_299, 2);
    let conf = engine.create_conference("room-3");
    let a = Caller::new(None);
    let b = Caller::new(None);
    let (leg_a, _) = join(&engine, &conf, &a, ParticipantOptions::default());
    let (_leg_b, _) = join(&engine, &conf, &b, ParticipantOptions::default());
    let music = conf.play(
        AudioClip::tone(8000, 600.0, 200, 8000),
        PlayOptions { looped: true },
    );
    eventually("everyone hears the conference player", TIMEOUT, || {
        hears(&a, 600.0, 1500.0)?;
        hears(&b, 600.0, 1500.0)
    })
    .await;
    // A private prompt for A, mixed on top of the conference.
    let prompt = leg_a.play(
        AudioClip::tone(8000, 1500.0, 200, 8000),
        PlayOptions { looped: true },
    );
    eventually("A hears prompt and music", TIMEOUT, || {
        hears(&a, 1500.0, 1000.0)?;
        hears(&a, 600.0, 1000.0)
    })
    .await;
    let b_prompt = b.power(1500.0);
    assert!(
        b_prompt < HEARD / 100.0,
        "B hears A's prompt: {b_prompt:.3e}"
    );
    leg_a.stop_media();
    assert_eq!(within("prompt", prompt).await, PlayOutcome::Interrupted);
    conf.stop_media();
    assert_eq!(within("music", music).await, PlayOutcome::Interrupted);
    let beep = conf.play(
        AudioClip::tone(8000, 600.0, 300, 8000),
        PlayOptions::default(),
    );
    assert_eq!(within("beep", beep).await, PlayOutcome::Finished);
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_keep_their_order_across_a_worker_move() {
    let engine = engine(31_300..=31_399, 2);
    let conf = engine.create_conference("room-4");
    // Let the conference settle on its worker, so the next leg starts on the
    // other one and must move when it joins.
    eventually("conference created", TIMEOUT, || {
        (engine.stats().conferences == 1)
            .then_some(())
            .ok_or("not yet".into())
    })
    .await;
    let a = Caller::new(None);
    let (leg, _events) = engine
        .start_leg(engine.allocate_socket().unwrap(), params(a.addr, "mover"))
        .unwrap();
    for round in 0..5 {
        let looped = leg.play(
            AudioClip::tone(8000, 440.0, 200, 8000),
            PlayOptions { looped: true },
        );
        conf.add(&leg, ParticipantOptions::default()).unwrap();
        leg.stop_media();
        assert_eq!(
            within("stop after move", looped).await,
            PlayOutcome::Interrupted,
            "round {round}"
        );
        conf.remove(&leg);
    }
    conf.add(&leg, ParticipantOptions::default()).unwrap();
    let short = leg.play(
        AudioClip::tone(8000, 440.0, 100, 8000),
        PlayOptions::default(),
    );
    assert_eq!(
        within("play after move", short).await,
        PlayOutcome::Finished
    );
    eventually("one participant", TIMEOUT, || {
        (conf.participant_count() == 1)
            .then_some(())
            .ok_or("not yet".into())
    })
    .await;

    // Closing the conference returns the leg to standalone.
    conf.close();
    assert!(conf.is_closed());
    assert!(matches!(
        conf.add(&leg, ParticipantOptions::default()),
        Err(MediaError::ConferenceClosed(_))
    ));
    let after = leg.play(
        AudioClip::tone(8000, 440.0, 100, 8000),
        PlayOptions::default(),
    );
    assert_eq!(
        within("standalone play", after).await,
        PlayOutcome::Finished
    );
    eventually("conference gone", TIMEOUT, || {
        (engine.stats().conferences == 0)
            .then_some(())
            .ok_or("not yet".into())
    })
    .await;
    leg.close();
    assert!(matches!(
        engine
            .create_conference("x")
            .add(&leg, ParticipantOptions::default()),
        Err(MediaError::LegClosed(_))
    ));
    engine.shutdown();
}
