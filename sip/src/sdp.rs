//! SDP offer/answer (RFC 3264) for audio: parse an offer, pick a codec, write
//! the answer.
//!
//! Parsing is by hand, on purpose. Offers from phones, trunks and SBCs vary
//! (LF-only line ends, attributes before `c=`, vendor attributes, session-level
//! `a=ptime`), and we read only a small subset: `c=`, `m=`, `a=rtpmap`,
//! `a=fmtp`, `a=ptime` and the direction attributes. The crates considered
//! either enforce RFC 4566 line order (`sdp`) or run WebRTC validations that
//! fail a whole offer over an unrelated attribute (`webrtc-sdp`). This parser
//! ignores what it does not use and rejects only what makes an offer unusable.
//!
//! The answer mirrors the offer's streams (RFC 3264 §6): every `m=` line of
//! the offer gets one in the answer, the ones we do not take with port 0.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no audio stream in the offer")]
    NoAudio,
    #[error("no codec in common")]
    NoCommonCodec,
}

/// One payload format offered on the audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`, `opus`, ...).
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

/// Media direction attribute (RFC 3264 §5.1); absent means `sendrecv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes for an offer in this direction
    /// (RFC 3264 §6.1): a `sendonly` offer (hold) is answered `recvonly`.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    fn parse(attribute: &str) -> Option<Direction> {
        match attribute {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// One `m=` line of an offer, as written, so the answer can mirror it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaLine {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/BFCP`, ...
    pub proto: String,
    /// The format list, space separated, as offered.
    pub formats: String,
}

/// Every `m=` line of the offer in order, and which one is our audio stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamLayout {
    pub lines: Vec<MediaLine>,
    /// Index in `lines` of the audio stream we answer.
    pub audio_index: usize,
}

/// The audio part of an SDP offer.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioOffer {
    /// Connection address (media-level `c=` if present, else session-level).
    pub address: IpAddr,
    pub port: u16,
    /// In the offerer's order of preference.
    pub formats: Vec<Format>,
    pub ptime_ms: Option<u32>,
    /// The offerer's direction for this stream (media level, else session level).
    pub direction: Direction,
    /// All the offer's streams, for the answer.
    pub layout: StreamLayout,
}

/// Parses an SDP offer and returns its first usable audio stream: the first
/// `m=audio` line over RTP/AVP (or RTP/AVPF) with a non-zero port.
pub fn parse_offer(body: &[u8]) -> Result<AudioOffer, SdpError> {
    let text = String::from_utf8_lossy(body);
    let description = Description::parse(&text)?;
    description.audio_offer()
}

/// The result of offer/answer for one audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    /// Where the offerer wants RTP.
    pub remote: SocketAddr,
    /// The chosen codec as offered.
    pub codec: Format,
    /// `telephone-event` at the codec's clock rate, if offered.
    pub dtmf: Option<Format>,
    pub ptime_ms: u32,
    /// Our direction in the answer (the offer's, reversed).
    pub direction: Direction,
    /// The offer's streams, mirrored by [`write_answer`].
    pub layout: StreamLayout,
}

/// Packetization time when the offer names none (RFC 3551 default for G.711).
pub const DEFAULT_PTIME_MS: u32 = 20;

/// Picks the first format in the offerer's order whose (encoding, clock rate)
/// is in `supported`, plus telephone-event at that rate if offered.
pub fn negotiate(offer: &AudioOffer, supported: &[(&str, u32)]) -> Result<Negotiated, SdpError> {
    let codec = offer
        .formats
        .iter()
        .filter(|f| !is_telephone_event(f))
        .find(|f| {
            supported.iter().any(|(encoding, rate)| {
                f.encoding.eq_ignore_ascii_case(encoding) && f.clock_rate == *rate
            })
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf = offer
        .formats
        .iter()
        .find(|f| is_telephone_event(f) && f.clock_rate == codec.clock_rate);
    Ok(Negotiated {
        remote: SocketAddr::new(offer.address, offer.port),
        codec: codec.clone(),
        dtmf: dtmf.cloned(),
        ptime_ms: offer.ptime_ms.unwrap_or(DEFAULT_PTIME_MS),
        direction: offer.direction.answer(),
        layout: offer.layout.clone(),
    })
}

/// Picks the codec by *our* order of preference: the first of `preferred`
/// (best first, e.g. Opus, then G.722, PCMU, PCMA) that the offer contains,
/// whatever the offerer's order; plus telephone-event at that codec's
/// clock rate if offered. Use [`negotiate`] to follow the offerer's order.
pub fn negotiate_preferring(
    offer: &AudioOffer,
    preferred: &[(&str, u32)],
) -> Result<Negotiated, SdpError> {
    let codec = preferred
        .iter()
        .find_map(|(encoding, rate)| {
            offer.formats.iter().find(|f| {
                !is_telephone_event(f)
                    && f.encoding.eq_ignore_ascii_case(encoding)
                    && f.clock_rate == *rate
            })
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf = offer
        .formats
        .iter()
        .find(|f| is_telephone_event(f) && f.clock_rate == codec.clock_rate);
    Ok(Negotiated {
        remote: SocketAddr::new(offer.address, offer.port),
        codec: codec.clone(),
        dtmf: dtmf.cloned(),
        ptime_ms: offer.ptime_ms.unwrap_or(DEFAULT_PTIME_MS),
        direction: offer.direction.answer(),
        layout: offer.layout.clone(),
    })
}

/// Our Opus parameters in an answer (RFC 7587): we decode in-band FEC and
/// send mono 20 ms frames with FEC.
const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

/// Events we can send and receive with telephone-event (RFC 4733): the
/// digits, `*`, `#`, A-D and flash.
const TELEPHONE_EVENTS: &str = "0-16";

/// Writes the SDP answer for `negotiated`, advertising `local` (the RTP
/// socket's real address). `session_id` goes into `o=`.
pub fn write_answer(negotiated: &Negotiated, local: SocketAddr, session_id: u64) -> String {
    let net = match local.ip() {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let ip = local.ip();
    let mut sdp = String::with_capacity(320);
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=switchboard {session_id} {session_id} IN {net} {ip}\r\ns=switchboard\r\n\
         c=IN {net} {ip}\r\nt=0 0\r\n"
    );
    let layout = &negotiated.layout;
    if layout.lines.is_empty() {
        // A Negotiated built without an offer layout: one audio stream.
        write_audio_section(&mut sdp, negotiated, local.port(), "RTP/AVP");
        return sdp;
    }
    for (index, line) in layout.lines.iter().enumerate() {
        if index == layout.audio_index {
            write_audio_section(&mut sdp, negotiated, local.port(), &line.proto);
        } else {
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\n",
                line.media, line.proto, line.formats
            );
        }
    }
    sdp
}

fn write_audio_section(sdp: &mut String, negotiated: &Negotiated, port: u16, proto: &str) {
    let codec = &negotiated.codec;
    let _ = write!(sdp, "m=audio {port} {proto} {}", codec.payload_type);
    if let Some(dtmf) = &negotiated.dtmf {
        let _ = write!(sdp, " {}", dtmf.payload_type);
    }
    sdp.push_str("\r\n");
    write_rtpmap(sdp, codec);
    if codec.encoding.eq_ignore_ascii_case("opus") {
        // Our own parameters, not the offer's (it may ask for stereo).
        let _ = write!(sdp, "a=fmtp:{} {OPUS_FMTP}\r\n", codec.payload_type);
    } else if let Some(fmtp) = &codec.fmtp {
        let _ = write!(sdp, "a=fmtp:{} {fmtp}\r\n", codec.payload_type);
    }
    if let Some(dtmf) = &negotiated.dtmf {
        write_rtpmap(sdp, dtmf);
        let _ = write!(sdp, "a=fmtp:{} {TELEPHONE_EVENTS}\r\n", dtmf.payload_type);
    }
    let _ = write!(
        sdp,
        "a=ptime:{}\r\na={}\r\n",
        negotiated.ptime_ms,
        negotiated.direction.as_str()
    );
}

fn write_rtpmap(sdp: &mut String, format: &Format) {
    let _ = write!(
        sdp,
        "a=rtpmap:{} {}/{}",
        format.payload_type, format.encoding, format.clock_rate
    );
    if format.channels > 1 {
        let _ = write!(sdp, "/{}", format.channels);
    }
    sdp.push_str("\r\n");
}

fn is_telephone_event(format: &Format) -> bool {
    format.encoding.eq_ignore_ascii_case("telephone-event")
}

/// Static payload types (RFC 3551 table 4) an offer may use without `a=rtpmap`.
fn static_format(payload_type: u8) -> Option<(&'static str, u32, u8)> {
    Some(match payload_type {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

/// The parts of a session description we use, kept as written: values are
/// parsed only for the stream we answer, so an odd line in a stream we
/// reject cannot fail the offer.
#[derive(Default)]
struct Description<'a> {
    connection: Option<&'a str>,
    direction: Option<Direction>,
    ptime: Option<&'a str>,
    media: Vec<MediaSection<'a>>,
}

struct MediaSection<'a> {
    line: MediaLine,
    port: u16,
    connection: Option<&'a str>,
    direction: Option<Direction>,
    ptime: Option<&'a str>,
    rtpmaps: Vec<&'a str>,
    fmtps: Vec<&'a str>,
}

impl<'a> Description<'a> {
    fn parse(text: &'a str) -> Result<Description<'a>, SdpError> {
        let mut lines = text
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty());
        match lines.next() {
            Some(first) if first.trim() == "v=0" => {}
            _ => return Err(SdpError::Malformed("does not start with v=0".into())),
        }
        let mut description = Description::default();
        for line in lines {
            let (kind, value) = line
                .split_once('=')
                .filter(|(kind, _)| kind.len() == 1)
                .ok_or_else(|| SdpError::Malformed(format!("bad line {line:?}")))?;
            let value = value.trim();
            match kind {
                "m" => description.media.push(MediaSection::parse(value)?),
                "c" => match description.media.last_mut() {
                    Some(media) => media.connection = Some(value),
                    None => description.connection = Some(value),
                },
                "a" => description.attribute(value),
                // v, o, s, i, u, e, p, b, t, r, z, k and unknown letters
                // carry nothing we use (RFC 4566 §5: ignore the unknown).
                _ => {}
            }
        }
        Ok(description)
    }

    fn attribute(&mut self, value: &'a str) {
        let (name, rest) = match value.split_once(':') {
            Some((name, rest)) => (name, Some(rest.trim())),
            None => (value, None),
        };
        let media = self.media.last_mut();
        if let Some(direction) = Direction::parse(name) {
            match media {
                Some(media) => media.direction = Some(direction),
                None => self.direction = Some(direction),
            }
            return;
        }
        match (name, rest, media) {
            ("ptime", Some(ptime), Some(media)) => media.ptime = Some(ptime),
            ("ptime", Some(ptime), None) => self.ptime = Some(ptime),
            ("rtpmap", Some(rtpmap), Some(media)) => media.rtpmaps.push(rtpmap),
            ("fmtp", Some(fmtp), Some(media)) => media.fmtps.push(fmtp),
            _ => {}
        }
    }

    fn audio_offer(&self) -> Result<AudioOffer, SdpError> {
        let (audio_index, audio) = self
            .media
            .iter()
            .enumerate()
            .find(|(_, m)| m.is_usable_audio())
            .ok_or(SdpError::NoAudio)?;
        let connection = audio
            .connection
            .or(self.connection)
            .ok_or_else(|| SdpError::Malformed("no c= line for the audio stream".into()))?;
        Ok(AudioOffer {
            address: parse_connection(connection)?,
            port: audio.port,
            formats: audio.formats()?,
            ptime_ms: audio.ptime.or(self.ptime).map(parse_ptime).transpose()?,
            direction: audio.direction.or(self.direction).unwrap_or_default(),
            layout: StreamLayout {
                lines: self.media.iter().map(|m| m.line.clone()).collect(),
                audio_index,
            },
        })
    }
}

impl<'a> MediaSection<'a> {
    fn parse(value: &str) -> Result<MediaSection<'a>, SdpError> {
        let malformed = || SdpError::Malformed(format!("bad m= line {value:?}"));
        let mut fields = value.split_ascii_whitespace();
        let media = fields.next().ok_or_else(malformed)?;
        let port = fields.next().ok_or_else(malformed)?;
        // `<port>/<number of ports>`: we use the first one.
        let port = port.split('/').next().unwrap_or(port);
        let port: u16 = port.parse().map_err(|_| malformed())?;
        let proto = fields.next().ok_or_else(malformed)?;
        let formats: Vec<&str> = fields.collect();
        if formats.is_empty() {
            return Err(malformed());
        }
        Ok(MediaSection {
            line: MediaLine {
                media: media.to_string(),
                proto: proto.to_string(),
                formats: formats.join(" "),
            },
            port,
            connection: None,
            direction: None,
            ptime: None,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
        })
    }

    /// Plain RTP audio we can take (no SRTP, no port-0 stream).
    fn is_usable_audio(&self) -> bool {
        self.line.media.eq_ignore_ascii_case("audio")
            && self.port != 0
            && (self.line.proto.eq_ignore_ascii_case("RTP/AVP")
                || self.line.proto.eq_ignore_ascii_case("RTP/AVPF"))
    }

    /// The offered formats in order; dynamic ones without `a=rtpmap` are
    /// unusable and left out.
    fn formats(&self) -> Result<Vec<Format>, SdpError> {
        let rtpmaps = self
            .rtpmaps
            .iter()
            .map(|r| parse_rtpmap(r))
            .collect::<Result<Vec<_>, _>>()?;
        let fmtps = self
            .fmtps
            .iter()
            .map(|f| {
                let (pt, params) = f.split_once(' ').unwrap_or((f, ""));
                Ok((parse_payload_type(pt)?, params.trim()))
            })
            .collect::<Result<Vec<_>, SdpError>>()?;
        let mut formats = Vec::new();
        for token in self.line.formats.split(' ') {
            let payload_type = parse_payload_type(token)?;
            let mapped = rtpmaps
                .iter()
                .find(|(pt, ..)| *pt == payload_type)
                .map(|(_, encoding, rate, channels)| (encoding.to_string(), *rate, *channels))
                .or_else(|| {
                    static_format(payload_type)
                        .map(|(encoding, rate, channels)| (encoding.to_string(), rate, channels))
                });
            let Some((encoding, clock_rate, channels)) = mapped else {
                continue;
            };
            let fmtp = fmtps
                .iter()
                .find(|(pt, params)| *pt == payload_type && !params.is_empty())
                .map(|(_, params)| params.to_string());
            formats.push(Format {
                payload_type,
                encoding,
                clock_rate,
                channels,
                fmtp,
            });
        }
        Ok(formats)
    }
}

/// `c=IN IP4 192.0.2.1` (an optional `/ttl` or `/count` suffix is ignored).
fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let malformed = || SdpError::Malformed(format!("bad c= line {value:?}"));
    let mut fields = value.split_ascii_whitespace();
    if fields.next() != Some("IN") {
        return Err(malformed());
    }
    let family = fields.next().ok_or_else(malformed)?;
    let address = fields.next().ok_or_else(malformed)?;
    let address = address.split('/').next().unwrap_or(address);
    let address: IpAddr = address.parse().map_err(|_| malformed())?;
    match (family, address) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(address),
        _ => Err(malformed()),
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`
fn parse_rtpmap(value: &str) -> Result<(u8, &str, u32, u8), SdpError> {
    let malformed = || SdpError::Malformed(format!("bad a=rtpmap {value:?}"));
    let (pt, map) = value.split_once(' ').ok_or_else(malformed)?;
    let payload_type = parse_payload_type(pt)?;
    let mut parts = map.trim().split('/');
    let encoding = parts
        .next()
        .filter(|e| !e.is_empty())
        .ok_or_else(malformed)?;
    let clock_rate = parts
        .next()
        .and_then(|r| r.trim().parse::<u32>().ok())
        .filter(|r| *r > 0)
        .ok_or_else(malformed)?;
    let channels = match parts.next() {
        Some(c) => c.trim().parse::<u8>().map_err(|_| malformed())?,
        None => 1,
    };
    Ok((payload_type, encoding, clock_rate, channels))
}

fn parse_payload_type(token: &str) -> Result<u8, SdpError> {
    token
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|pt| *pt < 128)
        .ok_or_else(|| SdpError::Malformed(format!("bad payload type {token:?}")))
}

fn parse_ptime(value: &str) -> Result<u32, SdpError> {
    // Some agents write fractional ptimes ("20.0").
    let whole = value.split('.').next().unwrap_or(value);
    whole
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|p| (1..=1000).contains(p))
        .ok_or_else(|| SdpError::Malformed(format!("bad a=ptime {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPPORTED: &[(&str, u32)] = &[("PCMU", 8000), ("PCMA", 8000)];

    #[test]
    fn our_preference_picks_opus_and_its_telephone_event() {
        let body = offer(
            "m=audio 4000 RTP/AVP 0 8 111 101 102\r\na=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 stereo=1;useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=rtpmap:102 telephone-event/48000\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        let ours: &[(&str, u32)] = &[
            ("opus", 48000),
            ("G722", 8000),
            ("PCMU", 8000),
            ("PCMA", 8000),
        ];
        let n = negotiate_preferring(&audio, ours).unwrap();
        assert_eq!(
            (n.codec.encoding.as_str(), n.codec.payload_type),
            ("opus", 111)
        );
        assert_eq!(n.dtmf.as_ref().map(|d| d.payload_type), Some(102));
        let answer = write_answer(&n, "192.0.2.1:5000".parse().unwrap(), 1);
        assert!(
            answer.contains("m=audio 5000 RTP/AVP 111 102\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:111 opus/48000/2\r\n"), "{answer}");
        assert!(
            answer.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"),
            "{answer}"
        );
        assert!(!answer.contains("stereo"), "{answer}");
        // The offerer's order would have picked PCMU.
        assert_eq!(negotiate(&audio, ours).unwrap().codec.encoding, "PCMU");
        // Without Opus, PCMU before PCMA whatever the offer's order.
        let body = offer("m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        let audio = parse_offer(body.as_bytes()).unwrap();
        let n = negotiate_preferring(&audio, ours).unwrap();
        assert_eq!(n.codec.encoding, "PCMU");
        assert_eq!(n.dtmf.map(|d| d.clock_rate), Some(8000));
        let body = offer("m=audio 4000 RTP/AVP 18\r\n");
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(
            negotiate_preferring(&audio, ours),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn g722_is_preferred_over_g711_and_answered_at_its_8khz_clock() {
        let ours: &[(&str, u32)] = &[
            ("opus", 48000),
            ("G722", 8000),
            ("PCMU", 8000),
            ("PCMA", 8000),
        ];
        // PT 9 is static: with or without its rtpmap, listed before or
        // after PCMU.
        for media in [
            "m=audio 4000 RTP/AVP 9 0 101\r\na=rtpmap:9 G722/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n",
            "m=audio 4000 RTP/AVP 0 9 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        ] {
            let audio = parse_offer(offer(media).as_bytes()).unwrap();
            let n = negotiate_preferring(&audio, ours).unwrap();
            assert_eq!(
                (n.codec.encoding.as_str(), n.codec.payload_type),
                ("G722", 9),
                "{media}"
            );
            assert_eq!(n.codec.clock_rate, 8000);
            assert_eq!(
                n.dtmf.as_ref().map(|d| (d.payload_type, d.clock_rate)),
                Some((101, 8000))
            );
            let answer = write_answer(&n, "192.0.2.1:5000".parse().unwrap(), 1);
            assert!(
                answer.contains("m=audio 5000 RTP/AVP 9 101\r\n"),
                "{answer}"
            );
            assert!(answer.contains("a=rtpmap:9 G722/8000\r\n"), "{answer}");
            assert!(
                answer.contains("a=rtpmap:101 telephone-event/8000\r\n"),
                "{answer}"
            );
        }
    }

    fn offer(media: &str) -> String {
        format!(
            "v=0\r\no=alice 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\n\
             t=0 0\r\n{media}"
        )
    }

    #[test]
    fn parses_a_softphone_offer() {
        let body = offer(
            "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.address, "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(audio.port, 4000);
        assert_eq!(audio.ptime_ms, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        let names: Vec<_> = audio.formats.iter().map(|f| f.encoding.as_str()).collect();
        assert_eq!(names, ["PCMA", "PCMU", "telephone-event"]);
        assert_eq!(audio.formats[2].fmtp.as_deref(), Some("0-15"));
        assert_eq!(audio.formats[2].payload_type, 101);
    }

    #[test]
    fn static_payload_types_need_no_rtpmap() {
        let audio = parse_offer(offer("m=audio 4000 RTP/AVP 0 8 18\r\n").as_bytes()).unwrap();
        let formats: Vec<_> = audio
            .formats
            .iter()
            .map(|f| {
                (
                    f.payload_type,
                    f.encoding.as_str(),
                    f.clock_rate,
                    f.channels,
                )
            })
            .collect();
        assert_eq!(
            formats,
            [
                (0, "PCMU", 8000, 1),
                (8, "PCMA", 8000, 1),
                (18, "G729", 8000, 1)
            ]
        );
    }

    #[test]
    fn dynamic_payload_type_without_rtpmap_is_skipped() {
        let audio = parse_offer(offer("m=audio 4000 RTP/AVP 96 0\r\n").as_bytes()).unwrap();
        assert_eq!(audio.formats.len(), 1);
        assert_eq!(audio.formats[0].encoding, "PCMU");
    }

    #[test]
    fn media_level_connection_wins_over_session_level() {
        let body = offer("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 203.0.113.7\r\n");
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.address, "203.0.113.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn session_level_connection_is_used_without_media_level() {
        let audio = parse_offer(offer("m=audio 4000 RTP/AVP 0\r\n").as_bytes()).unwrap();
        assert_eq!(audio.address, "198.51.100.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn media_level_connection_alone_is_enough() {
        let body = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n\
                    c=IN IP6 2001:db8::5\r\n";
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.address, "2001:db8::5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn missing_connection_is_malformed() {
        let body = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
        assert!(matches!(
            parse_offer(body.as_bytes()),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn tolerates_lf_line_ends_and_attribute_order() {
        let body = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 7078 RTP/AVP 0 101\n\
                    a=rtpmap:101 telephone-event/8000\nc=IN IP4 10.0.0.2\ny=vendor-line\n";
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.address, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(audio.formats.len(), 2);
    }

    #[test]
    fn session_level_ptime_and_direction_apply() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                    a=ptime:30\r\na=sendonly\r\nm=audio 7078 RTP/AVP 0\r\n";
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.ptime_ms, Some(30));
        assert_eq!(audio.direction, Direction::SendOnly);
        let negotiated = negotiate(&audio, SUPPORTED).unwrap();
        assert_eq!(negotiated.direction, Direction::RecvOnly);
    }

    #[test]
    fn rejects_garbage() {
        for body in [
            "",
            "hello",
            "v=1\r\n",
            "v=0\r\nthis is not sdp\r\n",
            "v=0\r\nm=audio x RTP/AVP 0\r\n",
            "v=0\r\nm=audio 4000 RTP/AVP\r\n",
            "v=0\r\nc=IN IP4 example.com\r\nm=audio 4000 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 300\r\n",
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
        ] {
            assert!(
                matches!(parse_offer(body.as_bytes()), Err(SdpError::Malformed(_))),
                "{body:?} was accepted"
            );
        }
    }

    #[test]
    fn odd_lines_in_a_rejected_stream_do_not_fail_the_offer() {
        let body = offer(
            "m=video 5000 RTP/AVP 96\r\nc=IN IP4 video.example.com\r\na=rtpmap:96 junk\r\n\
             a=ptime:never\r\nm=audio 4000 RTP/AVP 0\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.port, 4000);
        assert_eq!(audio.ptime_ms, None);
    }

    #[test]
    fn no_usable_audio() {
        for media in [
            "m=video 4002 RTP/AVP 31\r\n",
            "m=audio 0 RTP/AVP 0\r\n",
            "m=audio 4000 RTP/SAVP 0\r\n",
        ] {
            assert_eq!(
                parse_offer(offer(media).as_bytes()),
                Err(SdpError::NoAudio),
                "{media:?}"
            );
        }
    }

    #[test]
    fn negotiation_follows_the_offerers_order() {
        let pcma_first = parse_offer(offer("m=audio 4000 RTP/AVP 8 0\r\n").as_bytes()).unwrap();
        assert_eq!(
            negotiate(&pcma_first, SUPPORTED).unwrap().codec.encoding,
            "PCMA"
        );
        let pcmu_first = parse_offer(offer("m=audio 4000 RTP/AVP 0 8\r\n").as_bytes()).unwrap();
        assert_eq!(
            negotiate(&pcmu_first, SUPPORTED).unwrap().codec.encoding,
            "PCMU"
        );
        // Our list order does not matter, theirs does.
        let ours_reversed = [("PCMA", 8000), ("PCMU", 8000)];
        assert_eq!(
            negotiate(&pcmu_first, &ours_reversed)
                .unwrap()
                .codec
                .encoding,
            "PCMU"
        );
    }

    #[test]
    fn negotiation_skips_unsupported_codecs_and_matches_case_insensitively() {
        let body = offer(
            "m=audio 4000 RTP/AVP 96 18 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 pcmu/8000\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        let negotiated = negotiate(&audio, SUPPORTED).unwrap();
        assert_eq!(negotiated.codec.payload_type, 0);
        assert_eq!(negotiated.ptime_ms, DEFAULT_PTIME_MS);
        assert_eq!(
            negotiated.remote,
            "198.51.100.1:4000".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn telephone_event_must_match_the_codec_rate() {
        let body = offer(
            "m=audio 4000 RTP/AVP 9 0 100 101\r\na=rtpmap:9 G722/8000\r\n\
             a=rtpmap:100 telephone-event/16000\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        let negotiated = negotiate(&audio, SUPPORTED).unwrap();
        assert_eq!(negotiated.codec.encoding, "PCMU");
        assert_eq!(negotiated.dtmf.as_ref().map(|f| f.payload_type), Some(101));

        let wideband = [("G722", 8000)];
        let only_16k_events = offer(
            "m=audio 4000 RTP/AVP 96 100\r\na=rtpmap:96 L16/16000\r\n\
             a=rtpmap:100 telephone-event/16000\r\n",
        );
        let audio = parse_offer(only_16k_events.as_bytes()).unwrap();
        assert_eq!(negotiate(&audio, &wideband), Err(SdpError::NoCommonCodec));
        let negotiated = negotiate(&audio, &[("L16", 16000)]).unwrap();
        assert_eq!(negotiated.dtmf.map(|f| f.payload_type), Some(100));

        let no_events = parse_offer(offer("m=audio 4000 RTP/AVP 0\r\n").as_bytes()).unwrap();
        assert_eq!(negotiate(&no_events, SUPPORTED).unwrap().dtmf, None);
    }

    #[test]
    fn no_common_codec() {
        let body = offer("m=audio 4000 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(negotiate(&audio, SUPPORTED), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn answer_is_a_correct_rfc3264_answer() {
        let body = offer(
            "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\na=ptime:30\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        let negotiated = negotiate(&audio, SUPPORTED).unwrap();
        let answer = write_answer(&negotiated, "192.0.2.10:30000".parse().unwrap(), 42);
        assert_eq!(
            answer,
            "v=0\r\n\
             o=switchboard 42 42 IN IP4 192.0.2.10\r\n\
             s=switchboard\r\n\
             c=IN IP4 192.0.2.10\r\n\
             t=0 0\r\n\
             m=audio 30000 RTP/AVP 8 101\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:30\r\n\
             a=sendrecv\r\n"
        );
        // The answer parses back as an offer would.
        let back = parse_offer(answer.as_bytes()).unwrap();
        assert_eq!(back.port, 30000);
        assert_eq!(back.formats.len(), 2);
    }

    #[test]
    fn answer_rejects_the_other_streams_with_port_zero() {
        let body = offer(
            "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             m=audio 4000 RTP/SAVP 0\r\n\
             m=audio 4002 RTP/AVP 0\r\n\
             m=application 5002 UDP/BFCP *\r\n",
        );
        let audio = parse_offer(body.as_bytes()).unwrap();
        assert_eq!(audio.port, 4002);
        assert_eq!(audio.layout.audio_index, 2);
        let negotiated = negotiate(&audio, SUPPORTED).unwrap();
        let answer = write_answer(&negotiated, "[2001:db8::1]:30000".parse().unwrap(), 7);
        let m_lines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            [
                "m=video 0 RTP/AVP 96",
                "m=audio 0 RTP/SAVP 0",
                "m=audio 30000 RTP/AVP 0",
                "m=application 0 UDP/BFCP *",
            ]
        );
        assert!(answer.contains("c=IN IP6 2001:db8::1\r\n"));
        assert!(answer.contains("o=switchboard 7 7 IN IP6 2001:db8::1\r\n"));
    }

    #[test]
    fn hold_offer_is_answered_recvonly_and_codec_fmtp_is_kept() {
        let body = offer("m=audio 4000 RTP/AVP 18\r\na=fmtp:18 annexb=no\r\na=sendonly\r\n");
        let audio = parse_offer(body.as_bytes()).unwrap();
        let negotiated = negotiate(&audio, &[("G729", 8000)]).unwrap();
        let answer = write_answer(&negotiated, "192.0.2.10:30000".parse().unwrap(), 1);
        assert!(answer.contains("a=fmtp:18 annexb=no\r\n"));
        assert!(answer.contains("a=recvonly\r\n"));
        assert!(!answer.contains("telephone-event"));
    }
}

/// Writes an SDP offer for one audio stream at `local` with `formats` in
/// our order of preference (each with its payload type, encoding and rate)
/// and telephone-event at each `(payload type, clock rate)` given (one per
/// clock rate of the formats: RFC 4733 events run at their codec's clock).
pub fn write_offer(
    local: SocketAddr,
    session_id: u64,
    formats: &[Format],
    telephone_events: &[(u8, u32)],
) -> String {
    let net = match local.ip() {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let ip = local.ip();
    let mut sdp = String::with_capacity(320);
    let _ = write!(
        sdp,
        "v=0\r\no=switchboard {session_id} {session_id} IN {net} {ip}\r\ns=switchboard\r\n\
         c=IN {net} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP",
        local.port()
    );
    for format in formats {
        let _ = write!(sdp, " {}", format.payload_type);
    }
    for (pt, _) in telephone_events {
        let _ = write!(sdp, " {pt}");
    }
    sdp.push_str("\r\n");
    for format in formats {
        write_rtpmap(&mut sdp, format);
        if let Some(fmtp) = &format.fmtp {
            let _ = write!(sdp, "a=fmtp:{} {fmtp}\r\n", format.payload_type);
        }
    }
    for (pt, rate) in telephone_events {
        let _ = write!(
            sdp,
            "a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} {TELEPHONE_EVENTS}\r\n"
        );
    }
    let _ = write!(sdp, "a=ptime:{DEFAULT_PTIME_MS}\r\na=sendrecv\r\n");
    sdp
}

#[cfg(test)]
mod offer_tests {
    use super::*;

    #[test]
    fn an_offer_parses_back_and_negotiates() {
        let formats = [
            Format {
                payload_type: 0,
                encoding: "PCMU".into(),
                clock_rate: 8000,
                channels: 1,
                fmtp: None,
            },
            Format {
                payload_type: 8,
                encoding: "PCMA".into(),
                clock_rate: 8000,
                channels: 1,
                fmtp: None,
            },
        ];
        let local: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let offer = write_offer(local, 7, &formats, &[(101, 8000)]);
        let parsed = parse_offer(offer.as_bytes()).unwrap();
        assert_eq!(parsed.port, 40000);
        assert_eq!(parsed.address, local.ip());
        let n = negotiate(&parsed, &[("PCMA", 8000)]).unwrap();
        assert_eq!(n.codec.payload_type, 8);
        assert_eq!(n.dtmf.map(|d| d.payload_type), Some(101));
    }
}
