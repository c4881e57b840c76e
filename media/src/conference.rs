//! A conference as its worker sees it: the members (legs on the same
//! worker), talking detection, level normalisation, the loudest-K mix at
//! the room's rate, one shared output per codec, the conference's own
//! player and its recordings.
//!
//! The room runs at the highest rate its members speak (8 kHz for G.711
//! only, 48 kHz as soon as an Opus leg joins). Each member's input is
//! converted to that rate only when it is mixed; a selected member's
//! private output is converted back to its leg's rate; everyone else hears
//! the shared mix, converted and encoded once per codec and sent as is
//! ([`Conference::shared_for`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::codec::{LegEncoder, MAX_ENCODED};
use crate::leg::{Heard, Leg};
use crate::level::LevelNormaliser;
use crate::mixer::{ConferenceMixer, MixParticipant, DEFAULT_MAX_TALKERS};
use crate::player::{Player, PlayerSlot};
use crate::recorder::{track_path, RecordSink};
use crate::resample::RateConverter;
use crate::vad::{TalkDetector, Transition};
use crate::{
    frame_samples, Codec, ConferenceEvent, LegId, ParticipantOptions, PlayOutcome, CLOCK_RATE,
    MAX_FRAME,
};

/// The control plane's view of a conference.
#[derive(Debug)]
pub(crate) struct ConfShared {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// The worker that owns the conference (and so all its members).
    pub(crate) worker: usize,
    closed: AtomicBool,
    participants: AtomicUsize,
    /// The room's mixing rate now.
    rate: AtomicU32,
    /// Who is talking now (changed on transitions only).
    talking: Mutex<HashSet<LegId>>,
    /// Dropped when the conference closes, which ends the event stream.
    events_tx: Mutex<Option<UnboundedSender<ConferenceEvent>>>,
    events_rx: Mutex<Option<UnboundedReceiver<ConferenceEvent>>>,
}

impl ConfShared {
    pub(crate) fn new(id: u64, name: String, worker: usize) -> ConfShared {
        let (events_tx, events_rx) = unbounded_channel();
        ConfShared {
            id,
            name,
            worker,
            closed: AtomicBool::new(false),
            participants: AtomicUsize::new(0),
            rate: AtomicU32::new(CLOCK_RATE),
            talking: Mutex::new(HashSet::new()),
            events_tx: Mutex::new(Some(events_tx)),
            events_rx: Mutex::new(Some(events_rx)),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.events_tx).take();
    }

    pub(crate) fn participants(&self) -> usize {
        self.participants.load(Ordering::Relaxed)
    }

    pub(crate) fn rate(&self) -> u32 {
        self.rate.load(Ordering::Relaxed)
    }

    pub(crate) fn is_talking(&self, leg: LegId) -> bool {
        lock(&self.talking).contains(&leg)
    }

    pub(crate) fn take_events(&self) -> Option<UnboundedReceiver<ConferenceEvent>> {
        lock(&self.events_rx).take()
    }

    fn set_talking(&self, leg: LegId, talking: bool) {
        let changed = {
            let mut set = lock(&self.talking);
            if talking {
                set.insert(leg)
            } else {
                set.remove(&leg)
            }
        };
        if changed {
            let event = if talking {
                ConferenceEvent::Talking(leg)
            } else {
                ConferenceEvent::Silent(leg)
            };
            // Nobody listening is fine.
            if let Some(tx) = lock(&self.events_tx).as_ref() {
                let _ = tx.send(event);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One member, besides its slot in the mixer.
struct Member {
    leg_slot: usize,
    leg_id: LegId,
    codec: Codec,
    opts: ParticipantOptions,
    talk: TalkDetector,
    agc: LevelNormaliser,
    /// Leg rate → room rate, when they differ.
    input_conv: Option<RateConverter>,
    /// Room rate → leg rate, when they differ.
    output_conv: Option<RateConverter>,
    /// The member's output group (by codec).
    group: usize,
    /// Its own track of a conference recording with tracks.
    track: Option<RecordSink>,
}

/// The shared output of one codec: what everyone who is not a selected
/// talker hears, converted and encoded once per tick.
struct OutputGroup {
    codec: Codec,
    conv: Option<RateConverter>,
    pcm: Box<[i16; MAX_FRAME]>,
    encoder: LegEncoder,
    payload: Box<[u8; MAX_ENCODED]>,
    payload_len: usize,
    /// Encoded for this tick already.
    encoded: bool,
}

/// A recording of the mix (and maybe of each member).
struct ConfRecording {
    sink: RecordSink,
    conv: Option<RateConverter>,
    frame: Box<[i16; MAX_FRAME]>,
    tracks: bool,
    path: PathBuf,
    /// Ticks recorded so far (to align tracks that start later).
    ticks: u32,
}

/// The worker-side conference. `members[i]` and `mix[i]` describe the same
/// participant.
pub(crate) struct Conference {
    pub(crate) shared: Arc<ConfShared>,
    members: Vec<Member>,
    mix: Vec<MixParticipant>,
    mixer: ConferenceMixer,
    groups: Vec<OutputGroup>,
    player: PlayerSlot,
    player_frame: Box<[i16; MAX_FRAME]>,
    recordings: Vec<ConfRecording>,
    /// Scratch: a member's input at its leg's rate with gain applied.
    gained: Box<[i16; MAX_FRAME]>,
    /// Encodes done this tick (shared ones; private ones count in legs).
    pub(crate) encodes: u64,
}

impl Conference {
    pub(crate) fn new(shared: Arc<ConfShared>) -> Conference {
        Conference {
            shared,
            members: Vec::new(),
            mix: Vec::new(),
            mixer: ConferenceMixer::new(CLOCK_RATE, DEFAULT_MAX_TALKERS),
            groups: Vec::new(),
            player: PlayerSlot::default(),
            player_frame: Box::new([0; MAX_FRAME]),
            recordings: Vec::new(),
            gained: Box::new([0; MAX_FRAME]),
            encodes: 0,
        }
    }

    pub(crate) fn rate(&self) -> u32 {
        self.mixer.rate()
    }

    /// Participants mixed in the last tick.
    pub(crate) fn mixed(&self) -> usize {
        self.mixer.mixed()
    }

    /// Adds the leg in `leg_slot`, or updates its options if it is a member.
    pub(crate) fn add(
        &mut self,
        leg_slot: usize,
        leg_id: LegId,
        codec: Codec,
        opts: ParticipantOptions,
    ) {
        let i = match self.members.iter().position(|m| m.leg_slot == leg_slot) {
            Some(i) => i,
            None => {
                let group = self.group_for(codec);
                let mut member = Member {
                    leg_slot,
                    leg_id,
                    codec,
                    opts,
                    talk: TalkDetector::default(),
                    agc: LevelNormaliser::default(),
                    input_conv: None,
                    output_conv: None,
                    group,
                    track: None,
                };
                for rec in self.recordings.iter().filter(|r| r.tracks) {
                    member.track = Some(start_track(rec, leg_id, codec));
                }
                self.members.push(member);
                self.mix.push(MixParticipant::default());
                self.members.len() - 1
            }
        };
        self.members[i].opts = opts;
        self.mix[i].muted = opts.muted;
        self.mix[i].deaf = opts.deaf;
        self.membership_changed();
    }

    pub(crate) fn remove(&mut self, leg_slot: usize) {
        if let Some(i) = self.members.iter().position(|m| m.leg_slot == leg_slot) {
            let m = self.members.swap_remove(i);
            self.mix.swap_remove(i);
            if m.talk.is_talking() {
                self.shared.set_talking(m.leg_id, false);
            }
            self.membership_changed();
        }
    }

    /// The group of `codec`'s shared output (created on first use).
    fn group_for(&mut self, codec: Codec) -> usize {
        if let Some(g) = self.groups.iter().position(|g| g.codec == codec) {
            return g;
        }
        let encoder = match LegEncoder::new(codec) {
            Ok(e) => e,
            Err(e) => {
                // Cannot happen for the codecs we build; fall back to G.711.
                tracing::error!("shared encoder for {codec:?}: {e}");
                LegEncoder::G711(Codec::Pcmu)
            }
        };
        self.groups.push(OutputGroup {
            codec,
            conv: None,
            pcm: Box::new([0; MAX_FRAME]),
            encoder,
            payload: Box::new([0; MAX_ENCODED]),
            payload_len: 0,
            encoded: false,
        });
        self.groups.len() - 1
    }

    /// Picks the room's rate from its members and rebuilds the converters
    /// when it changes (allocates: only on joins and leaves).
    fn membership_changed(&mut self) {
        self.shared
            .participants
            .store(self.members.len(), Ordering::Relaxed);
        let rate = self
            .members
            .iter()
            .map(|m| m.codec.pcm_rate())
            .max()
            .unwrap_or(CLOCK_RATE);
        if rate != self.mixer.rate() {
            self.mixer = ConferenceMixer::new(rate, DEFAULT_MAX_TALKERS);
            for m in &mut self.members {
                m.input_conv = None;
                m.output_conv = None;
            }
            for g in &mut self.groups {
                g.conv = None;
            }
            self.shared.rate.store(rate, Ordering::Relaxed);
        }
        let converter = |from: u32, to: u32| match RateConverter::new(from, to) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("rate converter {from}→{to}: {e}");
                None
            }
        };
        for m in &mut self.members {
            let leg_rate = m.codec.pcm_rate();
            if leg_rate != rate && m.input_conv.is_none() {
                m.input_conv = converter(leg_rate, rate);
                m.output_conv = converter(rate, leg_rate);
            }
        }
        for g in &mut self.groups {
            let r = g.codec.pcm_rate();
            if r != rate && g.conv.is_none() {
                g.conv = converter(rate, r);
            }
        }
        for rec in &mut self.recordings {
            let r = rec.sink.rate();
            let fits = rec.conv.as_ref().is_some_and(|c| c.from_rate() == rate);
            if r != rate && !fits {
                rec.conv = converter(rate, r);
            } else if r == rate {
                rec.conv = None;
            }
        }
    }

    /// The worker slots of the members' legs.
    pub(crate) fn member_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.members.iter().map(|m| m.leg_slot)
    }

    pub(crate) fn play(&mut self, player: Player) {
        self.player.start(player);
    }

    pub(crate) fn stop_media(&mut self, outcome: PlayOutcome) {
        self.player.stop(outcome);
    }

    /// Starts recording the mix into `sink` (at the sink's rate).
    pub(crate) fn record(&mut self, sink: RecordSink, tracks: bool, path: PathBuf) {
        let rate = self.rate();
        let conv = (sink.rate() != rate)
            .then(|| RateConverter::new(rate, sink.rate()).ok())
            .flatten();
        let rec = ConfRecording {
            sink,
            conv,
            frame: Box::new([0; MAX_FRAME]),
            tracks,
            path,
            ticks: 0,
        };
        if tracks {
            for m in &mut self.members {
                m.track = Some(start_track(&rec, m.leg_id, m.codec));
            }
        }
        self.recordings.push(rec);
    }

    /// One tick: talking detection, level normalisation, the loudest-K
    /// selection and mix; tells each member's leg what it hears.
    pub(crate) fn mix(&mut self, legs: &mut [Option<Box<Leg>>]) {
        self.encodes = 0;
        for g in &mut self.groups {
            g.encoded = false;
        }
        let room = self.mixer.rate();
        let n_room = frame_samples(room);
        // 1. Levels, talking, who may be mixed.
        for (m, p) in self.members.iter_mut().zip(self.mix.iter_mut()) {
            let Some(leg) = legs.get(m.leg_slot).and_then(|l| l.as_deref()) else {
                p.has_input = false;
                continue;
            };
            let level = leg.rx_level();
            match m.talk.update(level) {
                Some(Transition::Started) => self.shared.set_talking(m.leg_id, true),
                Some(Transition::Stopped) => self.shared.set_talking(m.leg_id, false),
                None => {}
            }
            // DTMF tones stay out of the mix (the digit reaches the caller's
            // scenario; the room does not hear it).
            p.has_input = level.is_some() && !leg.dtmf_active();
            p.talking = m.talk.is_talking();
            p.level_dbfs = level.unwrap_or(-120.0) + m.agc.auto_gain_db() + m.opts.gain_db;
            if p.talking && p.has_input {
                if let Some(l) = level {
                    m.agc.observe_speech(l);
                }
            }
        }
        self.mixer.select(&mut self.mix);
        // 2. The selected members' inputs at the room's rate, with gain.
        for (m, p) in self.members.iter_mut().zip(self.mix.iter_mut()) {
            let Some(leg) = legs.get(m.leg_slot).and_then(|l| l.as_deref()) else {
                continue;
            };
            if let Some(track) = m.track.as_mut() {
                track.push(leg.rx_frame(), None);
            }
            if !p.selected {
                continue;
            }
            let rx = leg.rx_frame();
            let gained = &mut self.gained[..rx.len()];
            gained.copy_from_slice(rx);
            m.agc.apply(gained, m.opts.gain_db);
            match m.input_conv.as_mut() {
                Some(c) => c.process(gained, &mut p.input[..n_room]),
                None => p.input[..n_room].copy_from_slice(&gained[..n_room.min(gained.len())]),
            }
        }
        // 3. The conference's player, then the mix.
        let extra = if self.player.is_playing() {
            self.player_frame[..n_room].fill(0);
            self.player.add_at(&mut self.player_frame[..n_room], room);
            Some(&self.player_frame[..n_room])
        } else {
            None
        };
        self.mixer.mix(&mut self.mix, extra);
        // 4. Shared outputs per codec (converted now, encoded on demand).
        let shared = self.mixer.shared_output();
        for g in &mut self.groups {
            let n = frame_samples(g.codec.pcm_rate());
            match g.conv.as_mut() {
                Some(c) => c.process(shared, &mut g.pcm[..n]),
                None => g.pcm[..n].copy_from_slice(&shared[..n.min(shared.len())]),
            }
        }
        // 5. What each member's leg hears.
        for (m, p) in self.members.iter_mut().zip(self.mix.iter()) {
            let Some(leg) = legs.get_mut(m.leg_slot).and_then(|l| l.as_deref_mut()) else {
                continue;
            };
            if p.deaf {
                leg.set_heard(Heard::Nothing);
            } else if p.hears_private() {
                let out = leg.private_frame();
                match m.output_conv.as_mut() {
                    Some(c) => c.process(&p.output[..n_room], out),
                    None => out.copy_from_slice(&p.output[..out.len().min(n_room)]),
                }
                leg.set_heard(Heard::Private);
            } else {
                leg.set_heard(Heard::Shared(m.group));
            }
        }
        // 6. Recordings.
        let shared = self.mixer.shared_output();
        self.recordings.retain_mut(|rec| {
            if rec.sink.is_stopped() {
                return false; // dropping the sink finishes the file
            }
            match rec.conv.as_mut() {
                Some(c) => {
                    let n = frame_samples(c.to_rate());
                    c.process(shared, &mut rec.frame[..n]);
                    rec.sink.push(&rec.frame[..n], None);
                }
                None => rec.sink.push(shared, None),
            }
            rec.ticks = rec.ticks.saturating_add(1);
            true
        });
        if self.recordings.iter().all(|r| !r.tracks) {
            for m in &mut self.members {
                m.track = None;
            }
        }
    }

    /// The shared output of `group` for one listener: its audio at the
    /// group's codec rate and, if `encoded`, the payload encoded once for
    /// everyone this tick.
    pub(crate) fn shared_for(
        &mut self,
        group: usize,
        encoded: bool,
    ) -> Option<(&[i16], Option<&[u8]>)> {
        let g = self.groups.get_mut(group)?;
        let n = frame_samples(g.codec.pcm_rate());
        if encoded && !g.encoded {
            g.payload_len = g.encoder.encode(&g.pcm[..n], &mut g.payload[..]);
            g.encoded = true;
            self.encodes += 1;
        }
        let payload = (encoded && g.payload_len > 0).then(|| &g.payload[..g.payload_len]);
        Some((&g.pcm[..n], payload))
    }

    /// Ends the conference: its player resolves `Closed`, recordings end.
    pub(crate) fn close(mut self) {
        self.player.stop(PlayOutcome::Closed);
        for m in &self.members {
            if m.talk.is_talking() {
                self.shared.set_talking(m.leg_id, false);
            }
        }
        self.members.clear();
        self.recordings.clear();
        self.shared.participants.store(0, Ordering::Relaxed);
        self.shared.mark_closed();
    }
}

/// A per-member track of `rec`, aligned with the mix so far.
fn start_track(rec: &ConfRecording, leg: LegId, codec: Codec) -> RecordSink {
    let path = track_path(&rec.path, &leg.to_string());
    let mut sink = rec.sink.start_track(path, codec.pcm_rate());
    sink.skip(rec.ticks);
    sink
}
