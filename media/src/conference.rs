//! A conference as its worker sees it: the members (legs on the same worker)
//! and the conference's own player, mixed N-1 every tick.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::leg::Leg;
use crate::mixer::{ConferenceMixer, MixParticipant, Pcm, SILENCE};
use crate::player::{Player, PlayerSlot};
use crate::{LegId, ParticipantOptions, PlayOutcome};

/// The control plane's view of a conference.
#[derive(Debug)]
pub(crate) struct ConfShared {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// The worker that owns the conference (and so all its members).
    pub(crate) worker: usize,
    closed: AtomicBool,
    participants: AtomicUsize,
}

impl ConfShared {
    pub(crate) fn new(id: u64, name: String, worker: usize) -> ConfShared {
        ConfShared {
            id,
            name,
            worker,
            closed: AtomicBool::new(false),
            participants: AtomicUsize::new(0),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn participants(&self) -> usize {
        self.participants.load(Ordering::Relaxed)
    }
}

struct Member {
    leg_slot: usize,
    leg_id: LegId,
}

/// The worker-side conference. `members[i]` and `mix[i]` describe the same
/// participant.
pub(crate) struct Conference {
    pub(crate) shared: std::sync::Arc<ConfShared>,
    members: Vec<Member>,
    mix: Vec<MixParticipant>,
    mixer: ConferenceMixer,
    player: PlayerSlot,
    player_frame: Pcm,
}

impl Conference {
    pub(crate) fn new(shared: std::sync::Arc<ConfShared>) -> Conference {
        Conference {
            shared,
            members: Vec::new(),
            mix: Vec::new(),
            mixer: ConferenceMixer::new(),
            player: PlayerSlot::default(),
            player_frame: SILENCE,
        }
    }

    /// Adds the leg in `leg_slot`, or updates its options if it is a member.
    pub(crate) fn add(&mut self, leg_slot: usize, leg_id: LegId, opts: ParticipantOptions) {
        let i = match self.members.iter().position(|m| m.leg_slot == leg_slot) {
            Some(i) => i,
            None => {
                self.members.push(Member { leg_slot, leg_id });
                self.mix.push(MixParticipant::default());
                self.members.len() - 1
            }
        };
        self.mix[i].muted = opts.muted;
        self.mix[i].deaf = opts.deaf;
        self.publish_size();
    }

    pub(crate) fn remove(&mut self, leg_slot: usize) {
        if let Some(i) = self.members.iter().position(|m| m.leg_slot == leg_slot) {
            self.members.swap_remove(i);
            self.mix.swap_remove(i);
            self.publish_size();
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

    /// One tick: collects what every member said, mixes, hands each member
    /// what it hears.
    pub(crate) fn mix(&mut self, legs: &mut [Option<Box<Leg>>]) {
        for (m, p) in self.members.iter().zip(self.mix.iter_mut()) {
            match legs.get(m.leg_slot).and_then(|l| l.as_deref()) {
                Some(leg) if leg.rx_has_audio => {
                    p.input = leg.rx_frame;
                    p.has_input = true;
                }
                Some(_) => p.has_input = false,
                None => {
                    debug_assert!(false, "member {} without a leg", m.leg_id);
                    p.has_input = false;
                }
            }
        }
        let extra = if self.player.is_playing() {
            self.player_frame = SILENCE;
            self.player.add_to(&mut self.player_frame);
            Some(&self.player_frame)
        } else {
            None
        };
        self.mixer.mix(&mut self.mix, extra);
        for (m, p) in self.members.iter().zip(self.mix.iter()) {
            if let Some(leg) = legs.get_mut(m.leg_slot).and_then(|l| l.as_deref_mut()) {
                leg.mix_frame = p.output;
            }
        }
    }

    fn publish_size(&self) {
        self.shared
            .participants
            .store(self.members.len(), Ordering::Relaxed);
    }

    /// Ends the conference: its player resolves `Closed`.
    pub(crate) fn close(mut self) {
        self.player.stop(PlayOutcome::Closed);
        self.members.clear();
        self.publish_size();
        self.shared.mark_closed();
    }
}
