//! How we answer a re-INVITE: the extension point for session changes.
//!
//! Softphones re-INVITE to put a call on hold (`a=sendonly`), take it off
//! hold, refresh the session, or move their media. For now the session does
//! not change: we answer with the SDP we answered the call with, unchanged,
//! so its `o=` version stays (RFC 3264 §8). When the engine learns to
//! renegotiate (follow a new remote address, honour hold), the offer goes to
//! it from here and its answer comes back as [`Answer::Sdp`].

/// Our answer to a re-INVITE.
pub(crate) enum Answer {
    /// 200 OK with this SDP (an answer, or our offer when the re-INVITE
    /// carried none: the peer answers in the ACK).
    Sdp(String),
    /// A final error response with this code.
    Refuse(u16),
}

/// `offer` is the re-INVITE's body (empty without an offer), `current` the
/// SDP the call was answered with.
pub(crate) fn answer(offer: &[u8], current: Option<&str>) -> Answer {
    let _ = offer;
    match current {
        Some(sdp) => Answer::Sdp(sdp.to_string()),
        // Answered calls always have an SDP; without one there is nothing
        // acceptable to offer.
        None => Answer::Refuse(488),
    }
}
