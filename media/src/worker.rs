//! A media worker: a thread that owns a set of legs and conferences and runs
//! the 20 ms tick for them. A conference and all its members live on one
//! worker, so mixing needs no locks; a leg joining a conference elsewhere
//! moves to that conference's worker, mailbox and all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conference::{ConfShared, Conference};
use crate::leg::{ConfLink, Control, Heard, Leg};
use crate::player::{Completion, Player};
use crate::recorder::RecordSink;
use crate::stats::{AtomicLegStats, AtomicTickStats, LegStats, TickStats};
use crate::udp::RecvBatch;
use crate::{AudioClip, ParticipantOptions, PlayOutcome, FRAME_MS};

/// One tick.
pub(crate) const TICK: Duration = Duration::from_millis(FRAME_MS as u64);
/// Further behind than this, a worker skips ticks instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(100);
/// A tick starting later than this after its deadline counts as late.
const LATE_TICK: Duration = Duration::from_millis(5);
/// Legs' counters are published every this many ticks (100 ms).
const PUBLISH_EVERY: u64 = 5;
/// Largest datagram sent.
const SEND_BUF: usize = 2048;

/// Messages to a worker (besides the legs' own mailboxes).
pub(crate) enum WorkerCommand {
    /// A new leg to run.
    StartLeg(Box<Leg>),
    /// A leg moving here, to join a conference of this worker.
    AdoptLeg {
        leg: Box<Leg>,
        join: Option<(Arc<ConfShared>, ParticipantOptions)>,
    },
    CreateConference(Arc<ConfShared>),
    PlayConference {
        id: u64,
        clip: AudioClip,
        looped: bool,
        done: Completion,
    },
    StopConferenceMedia(u64),
    RecordConference {
        id: u64,
        sink: RecordSink,
        tracks: bool,
        path: std::path::PathBuf,
    },
    CloseConference(u64),
    Shutdown,
}

/// How workers reach each other (to hand legs over).
pub(crate) struct Peer {
    pub(crate) tx: Sender<WorkerCommand>,
    pub(crate) shared: Arc<WorkerShared>,
}

/// What a worker shares with the engine.
#[derive(Default)]
pub(crate) struct WorkerShared {
    /// Set (with an unpark) to make the worker stop waiting.
    pub(crate) stop: AtomicBool,
    /// Legs owned or on their way here.
    pub(crate) legs: AtomicUsize,
    pub(crate) conferences: AtomicUsize,
    pub(crate) traffic: AtomicLegStats,
    pub(crate) ticks: AtomicTickStats,
}

pub(crate) struct Worker {
    index: usize,
    inbox: Receiver<WorkerCommand>,
    /// All workers (by index), to hand legs over.
    peers: Arc<[Peer]>,
    shared: Arc<WorkerShared>,
    /// The engine's start: all workers measure time from it.
    epoch: Instant,

    legs: Vec<Option<Box<Leg>>>,
    free_legs: Vec<usize>,
    conferences: Vec<Option<Conference>>,
    free_conferences: Vec<usize>,
    conference_slots: HashMap<u64, usize>,

    rx: RecvBatch,
    tx_buf: Box<[u8; SEND_BUF]>,
    traffic: LegStats,
    tick_stats: TickStats,
    /// Ticks skipped by a resync, not yet reflected in the legs' RTP clocks.
    skipped_frames: u32,
    stopping: bool,
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        inbox: Receiver<WorkerCommand>,
        peers: Arc<[Peer]>,
        shared: Arc<WorkerShared>,
        epoch: Instant,
    ) -> Worker {
        Worker {
            index,
            inbox,
            peers,
            shared,
            epoch,
            legs: Vec::new(),
            free_legs: Vec::new(),
            conferences: Vec::new(),
            free_conferences: Vec::new(),
            conference_slots: HashMap::new(),
            rx: RecvBatch::new(),
            tx_buf: Box::new([0; SEND_BUF]),
            traffic: LegStats::default(),
            tick_stats: TickStats::default(),
            skipped_frames: 0,
            stopping: false,
        }
    }

    /// The thread body: ticks paced to absolute deadlines (no drift); when
    /// far behind, resynchronises instead of bursting.
    pub(crate) fn run(mut self) {
        let mut deadline = Instant::now() + TICK;
        while !self.stopping {
            loop {
                let now = Instant::now();
                if now >= deadline || self.shared.stop.load(Ordering::Acquire) {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
            let started = Instant::now();
            if started > deadline + LATE_TICK {
                self.tick_stats.late_ticks += 1;
            }
            self.tick();
            self.tick_stats.busy_ns += started.elapsed().as_nanos() as u64;
            deadline += TICK;
            let now = Instant::now();
            if now > deadline + MAX_LAG {
                self.tick_stats.resyncs += 1;
                let skipped = (now - deadline).as_nanos() / TICK.as_nanos();
                self.skipped_frames = self.skipped_frames.saturating_add(skipped as u32);
                deadline = now;
            }
        }
    }

    /// One media tick. Nothing here allocates in steady state (commands may).
    pub(crate) fn tick(&mut self) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        if self.shared.stop.load(Ordering::Acquire) {
            self.stopping = true;
        }
        self.process_inbox();
        self.drain_mailboxes();
        for leg in self.legs.iter_mut().flatten() {
            leg.receive(&mut self.rx, now_ms);
            leg.pull_audio(now_ms);
        }
        for conf in self.conferences.iter_mut().flatten() {
            conf.mix(&mut self.legs);
        }
        let skipped = std::mem::take(&mut self.skipped_frames);
        for leg in self.legs.iter_mut().flatten() {
            // Listeners of a conference send its shared mix, encoded once
            // per codec on first use this tick.
            let shared = match (leg.heard(), leg.conference) {
                (Heard::Shared(group), Some(link)) => {
                    let encoded = leg.can_share_payload();
                    let conf = self.conferences.get_mut(link.slot).and_then(|c| c.as_mut());
                    conf.and_then(|c| c.shared_for(group, encoded))
                }
                _ => None,
            };
            if shared.is_some_and(|(_, payload)| payload.is_some()) {
                self.tick_stats.shared_sends += 1;
            }
            leg.send(&mut self.tx_buf[..], skipped, shared);
            self.tick_stats.encodes += leg.encodes;
        }
        for conf in self.conferences.iter().flatten() {
            self.tick_stats.encodes += conf.encodes;
        }
        self.tick_stats.ticks += 1;
        self.publish_stats();
        if self.stopping {
            self.close_everything();
        }
    }

    fn publish_stats(&mut self) {
        // Legs publish every few ticks (cheap for readers, and a thousand
        // legs' atomics per tick add up); the worker's clock every tick.
        if self.tick_stats.ticks.is_multiple_of(PUBLISH_EVERY) || self.stopping {
            for leg in self.legs.iter_mut().flatten() {
                leg.publish_stats(&mut self.traffic);
            }
        }
        self.shared.traffic.store(&self.traffic);
        self.shared.ticks.store(&self.tick_stats);
    }

    fn process_inbox(&mut self) {
        loop {
            let cmd = match self.inbox.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            match cmd {
                WorkerCommand::StartLeg(leg) => {
                    let slot = self.insert_leg(leg);
                    self.drain_leg(slot);
                }
                WorkerCommand::AdoptLeg { leg, join } => {
                    // Counted for this worker by the one that sent it.
                    let slot = self.insert_leg(leg);
                    if let Some((conf, opts)) = join {
                        self.join(slot, conf, opts);
                    }
                    self.drain_leg(slot);
                }
                WorkerCommand::CreateConference(shared) => {
                    if shared.is_closed() {
                        continue;
                    }
                    let id = shared.id;
                    let conf = Some(Conference::new(shared));
                    let slot = match self.free_conferences.pop() {
                        Some(s) => {
                            self.conferences[s] = conf;
                            s
                        }
                        None => {
                            self.conferences.push(conf);
                            self.conferences.len() - 1
                        }
                    };
                    self.conference_slots.insert(id, slot);
                    self.shared.conferences.fetch_add(1, Ordering::Relaxed);
                }
                WorkerCommand::PlayConference {
                    id,
                    clip,
                    looped,
                    done,
                } => match self.conference_mut(id) {
                    Some(conf) => conf.play(Player::new(clip, looped, done)),
                    None => done.complete(PlayOutcome::Closed),
                },
                WorkerCommand::StopConferenceMedia(id) => {
                    if let Some(conf) = self.conference_mut(id) {
                        conf.stop_media(PlayOutcome::Interrupted);
                    }
                }
                WorkerCommand::RecordConference {
                    id,
                    sink,
                    tracks,
                    path,
                } => {
                    // A closed conference drops the sink: the file ends empty.
                    if let Some(conf) = self.conference_mut(id) {
                        conf.record(sink, tracks, path);
                    }
                }
                WorkerCommand::CloseConference(id) => self.close_conference(id),
                WorkerCommand::Shutdown => self.stopping = true,
            }
        }
    }

    fn conference_mut(&mut self, id: u64) -> Option<&mut Conference> {
        let slot = *self.conference_slots.get(&id)?;
        self.conferences.get_mut(slot)?.as_mut()
    }

    fn insert_leg(&mut self, leg: Box<Leg>) -> usize {
        leg.shared.set_pending();
        match self.free_legs.pop() {
            Some(s) => {
                self.legs[s] = Some(leg);
                s
            }
            None => {
                self.legs.push(Some(leg));
                self.legs.len() - 1
            }
        }
    }

    /// Takes a leg off this worker (to close it or hand it over).
    fn remove_leg(&mut self, slot: usize) -> Option<Box<Leg>> {
        self.leave_conference(slot, None);
        let mut leg = self.legs.get_mut(slot)?.take()?;
        leg.publish_stats(&mut self.traffic);
        self.free_legs.push(slot);
        self.shared.legs.fetch_sub(1, Ordering::Relaxed);
        Some(leg)
    }

    fn drain_mailboxes(&mut self) {
        for slot in 0..self.legs.len() {
            let pending = match &self.legs[slot] {
                Some(leg) => leg.shared.take_pending(),
                None => false,
            };
            if pending {
                self.drain_leg(slot);
            }
        }
    }

    /// Runs a leg's queued commands in order. Stops early if the leg closes
    /// or moves to another worker (which then runs the rest).
    fn drain_leg(&mut self, slot: usize) {
        loop {
            let Some(leg) = self.legs.get_mut(slot).and_then(|l| l.as_mut()) else {
                return;
            };
            let Some(cmd) = leg.shared.next_command() else {
                return;
            };
            let gone = match leg.apply(cmd) {
                None => false,
                Some(Control::Join { conf, opts }) => !self.join(slot, conf, opts),
                Some(Control::Leave { conf }) => {
                    self.leave_conference(slot, Some(conf));
                    false
                }
                Some(Control::Close) => {
                    drop(self.remove_leg(slot));
                    true
                }
            };
            if gone {
                return;
            }
        }
    }

    /// Puts the leg in `slot` into `conf`. Returns false if the leg left this
    /// worker to join it.
    fn join(&mut self, slot: usize, conf: Arc<ConfShared>, opts: ParticipantOptions) -> bool {
        if conf.is_closed() {
            return true;
        }
        let Some(leg) = self.legs.get(slot).and_then(|l| l.as_ref()) else {
            return false;
        };
        if let Some(link) = leg.conference {
            if link.id == conf.id {
                let (leg_id, codec) = (leg.shared.id, leg.codec());
                if let Some(c) = self.conference_mut(conf.id) {
                    c.add(slot, leg_id, codec, opts);
                }
                return true;
            }
            self.leave_conference(slot, None);
        }
        if conf.worker != self.index {
            return self.hand_over(slot, conf, opts);
        }
        if !self.conference_slots.contains_key(&conf.id) {
            // Created just now: its creation may still be in the inbox.
            self.process_inbox();
        }
        let Some(&conf_slot) = self.conference_slots.get(&conf.id) else {
            return true; // closed meanwhile
        };
        let Some(leg) = self.legs.get_mut(slot).and_then(|l| l.as_mut()) else {
            return false;
        };
        let (leg_id, codec) = (leg.shared.id, leg.codec());
        leg.conference = Some(ConfLink {
            id: conf.id,
            slot: conf_slot,
        });
        if let Some(c) = self.conferences[conf_slot].as_mut() {
            c.add(slot, leg_id, codec, opts);
        }
        true
    }

    /// Moves a leg to the worker of `conf`. Always returns false (the leg is
    /// no longer here).
    fn hand_over(&mut self, slot: usize, conf: Arc<ConfShared>, opts: ParticipantOptions) -> bool {
        let Some(leg) = self.remove_leg(slot) else {
            return false;
        };
        let Some(peer) = self.peers.get(conf.worker) else {
            return false; // dropping the leg closes it
        };
        // Counted for the target while in transit.
        peer.shared.legs.fetch_add(1, Ordering::Relaxed);
        let cmd = WorkerCommand::AdoptLeg {
            leg,
            join: Some((conf, opts)),
        };
        if let Err(returned) = peer.tx.send(cmd) {
            // The target worker is gone (shutting down): the leg closes.
            peer.shared.legs.fetch_sub(1, Ordering::Relaxed);
            drop(returned);
        }
        false
    }

    fn leave_conference(&mut self, slot: usize, only: Option<u64>) {
        let Some(leg) = self.legs.get_mut(slot).and_then(|l| l.as_mut()) else {
            return;
        };
        let Some(link) = leg.conference else { return };
        if only.is_some_and(|id| id != link.id) {
            return;
        }
        leg.conference = None;
        leg.set_heard(Heard::Nothing);
        if let Some(Some(conf)) = self.conferences.get_mut(link.slot) {
            conf.remove(slot);
        }
    }

    fn close_conference(&mut self, id: u64) {
        let Some(slot) = self.conference_slots.remove(&id) else {
            return;
        };
        let Some(conf) = self.conferences.get_mut(slot).and_then(|c| c.take()) else {
            return;
        };
        for leg_slot in conf.member_slots() {
            if let Some(Some(leg)) = self.legs.get_mut(leg_slot) {
                leg.conference = None;
                leg.set_heard(Heard::Nothing);
            }
        }
        conf.close();
        self.free_conferences.push(slot);
        self.shared.conferences.fetch_sub(1, Ordering::Relaxed);
    }

    /// Shutdown: every conference and leg closes (playbacks resolve
    /// `Closed`, event streams end), including legs still in the inbox.
    fn close_everything(&mut self) {
        let ids: Vec<u64> = self.conference_slots.keys().copied().collect();
        for id in ids {
            self.close_conference(id);
        }
        for slot in 0..self.legs.len() {
            drop(self.remove_leg(slot));
        }
        while let Ok(cmd) = self.inbox.try_recv() {
            match cmd {
                WorkerCommand::StartLeg(leg) | WorkerCommand::AdoptLeg { leg, .. } => {
                    self.shared.legs.fetch_sub(1, Ordering::Relaxed);
                    drop(leg);
                }
                WorkerCommand::CreateConference(c) => c.mark_closed(),
                WorkerCommand::PlayConference { done, .. } => done.complete(PlayOutcome::Closed),
                _ => {}
            }
        }
        self.publish_stats();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc_count::allocations;
    use crate::leg::{LegCommand, LegShared};
    use crate::ports::PortAllocator;
    use crate::rtp::RtpHeader;
    use crate::{g711, Codec, LegId, LegParams};
    use std::net::{IpAddr, Ipv4Addr, UdpSocket};
    use std::sync::mpsc;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    struct Phone {
        socket: UdpSocket,
        leg: Arc<LegShared>,
        seq: u16,
        ts: u32,
    }

    impl Phone {
        /// Sends one 20 ms PCMU packet of a constant level to its leg.
        fn send(&mut self, buf: &mut [u8; 172], level: i16) {
            RtpHeader {
                marker: false,
                payload_type: 0,
                sequence: self.seq,
                timestamp: self.ts,
                ssrc: 7,
            }
            .write(buf);
            g711::encode(Codec::Pcmu, &[level; 160], &mut buf[12..]);
            let _ = self.socket.send_to(buf, self.leg.local_addr);
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(160);
        }

        fn drain(&self, buf: &mut [u8]) -> usize {
            let mut n = 0;
            while self.socket.recv_from(buf).is_ok() {
                n += 1;
            }
            n
        }
    }

    /// A conference of three legs with traffic, a conference player and a
    /// private prompt: after warm-up, ticks make no heap allocation.
    #[test]
    fn steady_state_ticks_do_not_allocate() {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(WorkerShared::default());
        let peers: Arc<[Peer]> = vec![Peer {
            tx: tx.clone(),
            shared: shared.clone(),
        }]
        .into();
        let mut worker = Worker::new(0, rx, peers, shared.clone(), Instant::now());
        let ports = PortAllocator::new(LOCALHOST, 31_600..=31_799);
        let conf = Arc::new(ConfShared::new(1, "room".into(), 0));
        tx.send(WorkerCommand::CreateConference(conf.clone()))
            .unwrap();

        let mut phones = Vec::new();
        let mut event_rxs = Vec::new();
        let mut playbacks = Vec::new();
        for i in 0..3u64 {
            let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
            socket.set_nonblocking(true).unwrap();
            let rtp = ports.allocate().unwrap();
            rtp.socket.set_nonblocking(true).unwrap();
            let leg_shared = Arc::new(LegShared::new(
                LegId(i),
                "t".into(),
                rtp.local_addr(),
                Codec::Pcmu,
            ));
            let (etx, erx) = tokio::sync::mpsc::unbounded_channel();
            event_rxs.push(erx);
            let params = LegParams {
                remote: socket.local_addr().unwrap(),
                codec: Codec::Pcmu,
                payload_type: 0,
                dtmf_payload_type: Some(101),
                label: "t".into(),
            };
            let leg = Box::new(
                Leg::new(
                    leg_shared.clone(),
                    crate::leg::Transport::Udp(rtp.socket),
                    &params,
                    etx,
                )
                .unwrap(),
            );
            tx.send(WorkerCommand::StartLeg(leg)).unwrap();
            shared.legs.fetch_add(1, Ordering::Relaxed);
            assert!(leg_shared
                .push(LegCommand::Join {
                    conf: conf.clone(),
                    opts: ParticipantOptions::default(),
                })
                .is_ok());
            phones.push(Phone {
                socket,
                leg: leg_shared,
                seq: 1000,
                ts: 5000,
            });
        }
        let (done, pb) = Completion::new();
        playbacks.push(pb);
        assert!(phones[0]
            .leg
            .push(LegCommand::Play {
                clip: AudioClip::tone(8000, 300.0, 100, 3000),
                looped: true,
                done,
            })
            .is_ok());
        let (done, pb) = Completion::new();
        playbacks.push(pb);
        tx.send(WorkerCommand::PlayConference {
            id: 1,
            clip: AudioClip::tone(8000, 500.0, 70, 3000),
            looped: true,
            done,
        })
        .unwrap();

        let mut pkt = [0u8; 172];
        let mut scratch = [0u8; 2048];
        let mut run = |ticks: usize, worker: &mut Worker, phones: &mut Vec<Phone>| -> u64 {
            let mut allocated = 0;
            for t in 0..ticks {
                for (i, phone) in phones.iter_mut().enumerate() {
                    match (i, t % 10) {
                        // Phone 1 reorders, phone 2 duplicates and loses.
                        (1, 3) => {
                            phone.seq = phone.seq.wrapping_add(1);
                            phone.ts = phone.ts.wrapping_add(160);
                            phone.send(&mut pkt, 2000);
                            phone.seq = phone.seq.wrapping_sub(2);
                            phone.ts = phone.ts.wrapping_sub(320);
                            phone.send(&mut pkt, 2000);
                            phone.seq = phone.seq.wrapping_add(1);
                            phone.ts = phone.ts.wrapping_add(160);
                        }
                        (2, 5) => {
                            phone.send(&mut pkt, 1000);
                            phone.seq = phone.seq.wrapping_sub(1);
                            phone.ts = phone.ts.wrapping_sub(160);
                            phone.send(&mut pkt, 1000);
                        }
                        (2, 7) => {
                            phone.seq = phone.seq.wrapping_add(1);
                            phone.ts = phone.ts.wrapping_add(160);
                        }
                        _ => phone.send(&mut pkt, 1000 * (i as i16 + 1)),
                    }
                }
                let before = allocations();
                worker.tick();
                allocated += allocations() - before;
                for phone in phones.iter() {
                    phone.drain(&mut scratch);
                }
            }
            allocated
        };
        run(100, &mut worker, &mut phones);
        assert_eq!(conf.participants(), 3);
        let allocated = run(300, &mut worker, &mut phones);
        assert_eq!(allocated, 0, "allocations in 300 steady-state ticks");

        // The traffic really flowed through the jitter buffers and the mixer.
        let totals = shared.traffic.load();
        assert!(totals.packets_in >= 3 * 390, "{totals:?}");
        assert!(totals.packets_out >= 3 * 390, "{totals:?}");
        assert!(totals.duplicates >= 25, "{totals:?}");
        assert!(totals.lost >= 25, "{totals:?}");
        let leg0 = phones[0].leg.stats.load();
        assert!(
            leg0.underruns <= 2,
            "only while the buffer filled: {leg0:?}"
        );
        drop(worker);
        for pb in playbacks {
            let mut pb = pb;
            let outcome = futures_lite_poll(&mut pb);
            assert_eq!(outcome, Some(PlayOutcome::Closed));
        }
    }

    /// Polls a playback once without a runtime.
    fn futures_lite_poll(pb: &mut crate::Playback) -> Option<PlayOutcome> {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let mut cx = Context::from_waker(Waker::noop());
        match std::pin::Pin::new(pb).poll(&mut cx) {
            Poll::Ready(o) => Some(o),
            Poll::Pending => None,
        }
    }
}
