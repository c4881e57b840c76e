//! WebRTC legs: a browser's audio, bridged into the same media core as SIP
//! phones.
//!
//! A WebRTC leg is an ordinary [`Leg`](crate::leg::Leg) on a media worker —
//! jitter buffer, Opus, DTMF, players, recordings, conferences all
//! unchanged — whose packets do not go straight to a UDP socket but through
//! a [`Pipe`] to a *transport task* that owns a `str0m` [`Rtc`]: ICE-lite
//! (we answer STUN checks, the browser is the controlling full agent),
//! DTLS (we are passive, as ICE-lite answerer), SRTP, RTCP. The leg sees
//! plain RTP both ways, with the negotiated Opus and telephone-event
//! payload types.
//!
//! **Why a separate thread for the transports.** The media workers keep a
//! 20 ms real-time tick for hundreds of legs; a DTLS handshake (ECDHE, a
//! signature and a verify: around a millisecond of CPU), STUN integrity,
//! SRTP and str0m's own per-packet allocations have no place on it. All
//! transport tasks run on one `media-webrtc` thread (a current-thread tokio
//! runtime, started with the first WebRTC leg); the worker only copies
//! packets into and out of bounded queues of recycled buffers. A handshake
//! can delay other browsers' packets by a millisecond or so on that thread —
//! their jitter buffers absorb that — but never a tick of the mix. The hop
//! costs no tick of latency: received packets wait for the next tick like a
//! UDP leg's, sent ones are protected and sent as soon as the transport
//! thread wakes (microseconds).
//!
//! Candidates: host candidates only (ICE-lite, no trickle): the addresses
//! the caller says to advertise (the engine's public address), else the
//! socket's own; plus `127.0.0.1` when the socket listens on loopback or
//! on every address, so tests and a browser on the same machine connect.

mod pipe;
mod transport;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::format::Codec as RtcCodec;
use str0m::format::FormatParams;
use str0m::media::{Frequency, MediaKind, Mid};
use str0m::{Candidate, Output, Rtc};

pub(crate) use pipe::Pipe;
pub(crate) use transport::{Transport, TransportThread};

use crate::ports::RtpSocket;
use crate::{Codec, MediaError};

/// A browser's offer, accepted: the SDP answer to send back, and what
/// [`MediaEngine::start_webrtc_leg`](crate::MediaEngine::start_webrtc_leg)
/// needs to start the leg. Nothing listens until the leg starts (start it
/// when the answer goes out: ICE checks follow the answer).
pub struct WebRtcSession {
    pub(crate) rtc: Box<Rtc>,
    pub(crate) socket: RtpSocket,
    /// Our host candidates (where the browser sends).
    pub(crate) candidates: Vec<SocketAddr>,
    answer: String,
    pub(crate) mid: Mid,
    pub(crate) payload_type: u8,
    /// telephone-event: payload type and clock rate.
    pub(crate) dtmf: Option<(u8, u32)>,
}

impl std::fmt::Debug for WebRtcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSession")
            .field("local", &self.socket.local_addr())
            .field("candidates", &self.candidates)
            .field("payload_type", &self.payload_type)
            .field("dtmf", &self.dtmf)
            .finish()
    }
}

impl WebRtcSession {
    /// The SDP answer (ICE-lite, passive DTLS, Opus and telephone-event).
    pub fn answer_sdp(&self) -> &str {
        &self.answer
    }

    /// The local UDP address (all ICE, DTLS and SRTP go through it).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr()
    }

    /// The host candidates advertised in the answer.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.candidates
    }

    /// The audio codec: always Opus (what browsers offer first; the
    /// mixer handles it at 48 kHz next to G.711 legs).
    pub fn codec(&self) -> Codec {
        Codec::Opus
    }

    /// The negotiated telephone-event payload type and clock rate.
    pub fn dtmf(&self) -> Option<(u8, u32)> {
        self.dtmf
    }
}

/// Whether `sdp` is a WebRTC offer: an audio stream over DTLS-SRTP
/// (`UDP/TLS/RTP/SAVPF`) with a DTLS fingerprint.
pub fn is_webrtc_offer(sdp: &str) -> bool {
    let mut savpf = false;
    let mut fingerprint = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut fields = m.split_ascii_whitespace();
            let media = fields.next();
            let proto = fields.nth(1).unwrap_or("");
            if media == Some("audio") && proto.to_ascii_uppercase().contains("SAVPF") {
                savpf = true;
            }
        } else if line.starts_with("a=fingerprint:") {
            fingerprint = true;
        }
    }
    savpf && fingerprint
}

/// Picks what we answer with from the offer: Opus, and telephone-event at
/// 48 kHz (what Chrome sends with Opus) or else 8 kHz (Firefox).
#[allow(clippy::type_complexity)]
fn choose_formats(offer: &SdpOffer) -> Result<(Mid, u8, Option<(u8, u32)>), MediaError> {
    let mut opus = None;
    let mut tele_48k = None;
    let mut tele_8k = None;
    for line in &offer.media_lines {
        for p in line.rtp_params() {
            let spec = p.spec();
            let pt = *p.pt();
            match (spec.codec, spec.clock_rate.get()) {
                (RtcCodec::Opus, 48_000) if !line.disabled => {
                    opus.get_or_insert((line.mid(), pt));
                }
                (RtcCodec::Tele, 48_000) => {
                    tele_48k.get_or_insert(pt);
                }
                (RtcCodec::Tele, 8000) => {
                    tele_8k.get_or_insert(pt);
                }
                _ => {}
            }
        }
    }
    let (mid, opus) = opus.ok_or_else(|| MediaError::WebRtc("the offer has no Opus".into()))?;
    let dtmf = tele_48k
        .map(|pt| (pt, 48_000))
        .or(tele_8k.map(|pt| (pt, 8000)));
    Ok((mid, opus, dtmf))
}

/// Our host candidates for a socket bound to `local`.
fn candidate_addrs(local: SocketAddr, advertise: &[IpAddr]) -> Vec<SocketAddr> {
    let port = local.port();
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in advertise {
        if !ip.is_unspecified() && !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    if ips.is_empty() && !local.ip().is_unspecified() {
        ips.push(local.ip());
    }
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let reaches_loopback = local.ip().is_unspecified() || local.ip().is_loopback();
    if local.is_ipv4() && reaches_loopback && !ips.contains(&loopback) {
        ips.push(loopback);
    }
    if ips.is_empty() {
        ips.push(loopback);
    }
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// Accepts `offer` on `socket`: an ICE-lite, RTP-mode `Rtc` that answers
/// with Opus and telephone-event only.
pub(crate) fn accept_offer(
    socket: RtpSocket,
    offer: &str,
    advertise: &[IpAddr],
) -> Result<WebRtcSession, MediaError> {
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| MediaError::WebRtc(format!("unreadable offer: {e}")))?;
    let (mid, opus_pt, dtmf) = choose_formats(&offer)?;
    let mut config = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_stats_interval(None)
        .clear_codecs();
    {
        let codecs = config.codec_config();
        codecs.enable_opus(true, false);
        if let Some((pt, rate)) = dtmf {
            let rate = if rate == 8000 {
                Frequency::EIGHT_KHZ
            } else {
                Frequency::FORTY_EIGHT_KHZ
            };
            codecs.add_config(
                pt.into(),
                None,
                RtcCodec::Tele,
                rate,
                None,
                FormatParams::parse_line("0-16"),
            );
        }
    }
    let mut rtc = config.build(Instant::now());
    let candidates = candidate_addrs(socket.local_addr(), advertise);
    for addr in &candidates {
        let c = Candidate::host(*addr, "udp")
            .map_err(|e| MediaError::WebRtc(format!("candidate {addr}: {e}")))?;
        rtc.add_local_candidate(c);
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| MediaError::WebRtc(format!("cannot answer the offer: {e}")))?;
    // Drain after the change (str0m's contract).
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(_)) => break,
            Ok(_) => {}
            Err(e) => return Err(MediaError::WebRtc(format!("after the offer: {e}"))),
        }
    }
    if rtc.media(mid).is_none_or(|m| m.kind() != MediaKind::Audio) {
        return Err(MediaError::WebRtc("no audio stream in the answer".into()));
    }
    let answer = answer.to_sdp_string();
    Ok(WebRtcSession {
        rtc: Box::new(rtc),
        socket,
        candidates,
        answer,
        mid,
        payload_type: opus_pt,
        dtmf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Chrome sends (trimmed of video and most extensions).
    pub(crate) const CHROME_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS stream\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Hn9V\r\n\
a=ice-pwd:5FQVQrAa6S8vJYFHeJbpHVcJ\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendrecv\r\n\
a=msid:stream track\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1001 cname:abcd\r\n\
a=ssrc:1001 msid:stream track\r\n";

    fn socket(ip: &str) -> RtpSocket {
        let s = std::net::UdpSocket::bind((ip.parse::<IpAddr>().unwrap(), 0)).unwrap();
        let local = s.local_addr().unwrap();
        RtpSocket::from_parts(s, local)
    }

    #[test]
    fn detects_webrtc_offers() {
        assert!(is_webrtc_offer(CHROME_OFFER));
        let plain = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert!(!is_webrtc_offer(plain));
        // SAVPF without a fingerprint is SDES-SRTP, not WebRTC.
        let sdes = "v=0\r\nm=audio 4000 RTP/SAVPF 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 x\r\n";
        assert!(!is_webrtc_offer(sdes));
    }

    #[test]
    fn answers_a_chrome_offer_with_ice_lite_passive_dtls_opus_and_dtmf() {
        let session = accept_offer(socket("127.0.0.1"), CHROME_OFFER, &[]).unwrap();
        let answer = session.answer_sdp();
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains("a=setup:passive"), "{answer}");
        assert!(answer.contains("UDP/TLS/RTP/SAVPF"), "{answer}");
        assert!(answer.contains("a=fingerprint:sha-256"), "{answer}");
        assert!(answer.contains("a=rtcp-mux"), "{answer}");
        assert!(answer.contains("a=rtpmap:111 opus/48000/2"), "{answer}");
        assert!(answer.contains("telephone-event/48000"), "{answer}");
        assert!(!answer.contains("PCMU"), "{answer}");
        let port = session.local_addr().port();
        assert!(
            answer.contains(&format!("127.0.0.1 {port} typ host")),
            "{answer}"
        );
        assert_eq!(session.dtmf(), Some((110, 48_000)));
        assert_eq!(session.payload_type, 111);
    }

    #[test]
    fn telephone_event_at_8k_when_that_is_all_offered() {
        let offer = CHROME_OFFER
            .replace(" 110 126\r\n", " 126\r\n")
            .replace("a=rtpmap:110 telephone-event/48000\r\n", "");
        let session = accept_offer(socket("127.0.0.1"), &offer, &[]).unwrap();
        assert_eq!(session.dtmf(), Some((126, 8000)));
        assert!(session.answer_sdp().contains("telephone-event/8000"));
    }

    #[test]
    fn refuses_an_offer_without_opus() {
        let offer = CHROME_OFFER.replace(
            "a=rtpmap:111 opus/48000/2\r\n",
            "a=rtpmap:111 foo/48000/2\r\n",
        );
        let err = accept_offer(socket("127.0.0.1"), &offer, &[]).unwrap_err();
        assert!(err.to_string().contains("Opus"), "{err}");
    }

    #[test]
    fn candidates_are_the_advertised_address_and_loopback() {
        let any: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            candidate_addrs(any, &[public]),
            vec![
                "203.0.113.7:4000".parse().unwrap(),
                "127.0.0.1:4000".parse().unwrap()
            ]
        );
        let lo: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(candidate_addrs(lo, &[]), vec![lo]);
        let specific: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        assert_eq!(candidate_addrs(specific, &[]), vec![specific]);
    }
}
