//! Real speech (espeak-ng, as the engine's TTS makes it) is told apart
//! from tones and silence, directly and through a call.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use switchboard_testagent::analysis::{synth, SpeechStats};
use switchboard_testagent::{Agent, AgentConfig, AutoAnswer, CallOptions};

const WAIT: Duration = Duration::from_secs(15);

/// A sentence spoken by espeak-ng, converted to 8 kHz mono by sox (both
/// are required on the machines that run switchboard's tests).
fn spoken_sentence(dir: &Path) -> PathBuf {
    let raw = dir.join("speech.wav");
    let converted = dir.join("speech8k.wav");
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&raw)
        .arg(
            "Welcome to switchboard. Please enter your conference code, followed by the pound key.",
        )
        .status()
        .expect("espeak-ng must be installed");
    assert!(status.success());
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1"])
        .arg(&converted)
        .status()
        .expect("sox must be installed");
    assert!(status.success());
    converted
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sbagent-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn spoken_sentence_is_speech_like_and_tones_are_not() {
    let dir = temp_dir("speech-unit");
    let samples = switchboard_testagent::wav::read(spoken_sentence(&dir)).expect("wav");
    let windows: Vec<SpeechStats> = samples
        .chunks_exact(8000)
        .map(SpeechStats::measure)
        .collect();
    let speechy = windows.iter().filter(|s| s.is_speech_like()).count();
    assert!(
        speechy * 4 >= windows.len() * 3,
        "only {speechy} of {} one-second windows look like speech: {:?}",
        windows.len(),
        windows.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    assert!(!SpeechStats::measure(&synth::tone(440.0, 0.3, 8000)).is_speech_like());
    assert!(
        !SpeechStats::measure(&synth::tones(&[(440.0, 0.2), (480.0, 0.2)], 8000)).is_speech_like()
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_played_into_a_call_is_heard_as_speech() {
    let dir = temp_dir("speech-call");
    let wav = spoken_sentence(&dir);
    let caller = Agent::bind(AgentConfig::udp()).await.expect("bind");
    let callee = Agent::bind(AgentConfig::udp().auto_answer(AutoAnswer::default()))
        .await
        .expect("bind");
    let a_leg = caller
        .call(&callee.uri(), CallOptions::default())
        .await
        .expect("answered");
    let b_leg = callee.next_answered(WAIT).await.expect("answered");

    b_leg.play_tone(440.0, 0.3);
    let error = a_leg
        .wait_for_speech(Duration::from_millis(1500))
        .await
        .expect_err("a steady tone is no speech");
    assert!(error.to_string().contains("level spread"), "{error}");

    let playback = b_leg.play_wav(&wav).expect("playable");
    let stats = a_leg.wait_for_speech(WAIT).await.expect("speech heard");
    assert!(stats.rms_dbfs > -40.0, "{stats}");
    assert_eq!(
        playback.finished().await,
        switchboard_testagent::PlaybackEnd::Finished
    );
    a_leg
        .wait_for_silence(-60.0, WAIT)
        .await
        .expect("silence after the sentence");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
