//! Media benchmarks (criterion), plus figures printed before them:
//!
//! - `room_tick/{codec}/{n}`: one 20 ms tick of a whole conference of `n`
//!   participants with 3 talkers (receive path from parsed packets on,
//!   jitter buffers, decoding, talking and DTMF detection, selection, mix,
//!   shared and private encodes, packet building), without system calls;
//! - encodes per tick in a 100-participant Opus room;
//! - the jitter buffer's added delay in steady state under network jitter.
//!
//! `cargo bench -p switchboard-media --bench media`

use std::time::Instant;

use criterion::{BenchmarkId, Criterion};
use switchboard_media::bench::RoomBench;
use switchboard_media::jitter::{JitterBuffer, JitterConfig, PayloadDecoder};
use switchboard_media::{g711, Codec};

fn room_ticks(c: &mut Criterion) {
    let mut group = c.benchmark_group("room_tick");
    group.sample_size(20);
    for (name, codec) in [("pcmu", Codec::Pcmu), ("opus", Codec::Opus)] {
        let sizes: &[usize] = if codec == Codec::Opus {
            &[10, 100]
        } else {
            &[10, 100, 1000]
        };
        for &n in sizes {
            let mut room = RoomBench::new(n, 3, |_| codec).expect("a bench room");
            for _ in 0..100 {
                room.tick(); // warm up: jitter buffers filled, talkers selected
            }
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| b.iter(|| room.tick()));
        }
    }
    group.finish();
}

/// Encodes per tick: talkers + one per codec, whatever the room's size.
fn print_encodes() {
    for (label, n, codec) in [
        ("opus", 100usize, None),
        ("mixed opus/pcmu", 100, Some(())),
        ("pcmu", 1000, None::<()>),
    ] {
        let mut room = RoomBench::new(n, 3, |i| match (label, codec, i % 2) {
            ("pcmu", _, _) => Codec::Pcmu,
            (_, Some(()), 1) => Codec::Pcmu,
            _ => Codec::Opus,
        })
        .expect("a bench room");
        let mut total = 0;
        for _ in 0..100 {
            room.tick();
        }
        for _ in 0..100 {
            room.tick();
            total += room.encodes();
        }
        println!(
            "encodes per tick, {n}-participant {label} room, 3 talkers: {:.2} (mixed: {})",
            total as f64 / 100.0,
            room.mixed()
        );
    }
}

/// µ-law for the jitter simulation.
struct Ulaw;
impl PayloadDecoder for Ulaw {
    fn samples(&self, payload: &[u8]) -> usize {
        payload.len()
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        g711::decode(Codec::Pcmu, payload, out)
    }
}

/// Simulates a 20 ms sender through a network with `jitter_ms` of random
/// extra delay (uniform), read by a 20 ms tick: the buffer's lag (what it
/// adds beyond the frame being played) and the frames it had to conceal.
fn jitter_figures() {
    for jitter_ms in [0u64, 10, 30, 60] {
        let mut jb = JitterBuffer::new(JitterConfig::adaptive(8000));
        let mut dec = Ulaw;
        let mut state = 0x9e37_79b9_u32;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        // (arrival ms, seq)
        let mut in_flight: Vec<(u64, u16)> = (0..3000u16)
            .map(|k| {
                let extra = if jitter_ms == 0 {
                    0
                } else {
                    u64::from(random()) % jitter_ms
                };
                (u64::from(k) * 20 + 7 + extra, k)
            })
            .collect();
        in_flight.sort();
        let mut next = 0;
        let mut out = [0i16; 160];
        let (mut lag_sum, mut lag_n, mut missing) = (0u64, 0u64, 0u64);
        for tick in 1..3000u64 {
            let now = tick * 20;
            while next < in_flight.len() && in_flight[next].0 <= now {
                let seq = in_flight[next].1;
                jb.insert_at(1, seq, u32::from(seq) * 160, &[0x55; 160], &dec, now);
                next += 1;
            }
            let frame = jb.pop(&mut dec, &mut out);
            if tick > 500 {
                if !frame.has_audio() {
                    missing += 1;
                }
                if let Some(lag) = jb.measured_lag() {
                    lag_sum += lag;
                    lag_n += 1;
                }
            }
        }
        let lag_ms = lag_sum as f64 / lag_n.max(1) as f64 / 8.0;
        println!(
            "jitter buffer, {jitter_ms:>2} ms network jitter: adds {lag_ms:.1} ms in steady state (+ up to one tick of phase), target {:.1} ms, concealed {missing} of 2500 frames",
            jb.target_lag() as f64 / 8.0
        );
    }
}

fn main() {
    let start = Instant::now();
    print_encodes();
    jitter_figures();
    println!("(figures in {:.1} s)\n", start.elapsed().as_secs_f64());
    let mut c = Criterion::default().configure_from_args();
    room_ticks(&mut c);
    c.final_summary();
}
