//! The audio part of SDP (RFC 4566 / 3264): write our offer or answer,
//! read theirs, pick a codec.

use std::net::{IpAddr, SocketAddr};

use crate::config::Codec;

/// One payload format of an audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpFormat {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Our direction in an answer to an offer with this direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether the side holding this direction may send.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side holding this direction wants to receive.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// The first audio stream of a session description.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioDescription {
    pub addr: IpAddr,
    pub port: u16,
    /// In the writer's order of preference.
    pub formats: Vec<SdpFormat>,
    pub direction: Direction,
    pub ptime: Option<u32>,
}

impl AudioDescription {
    pub fn rtp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// The first format (in this description's order) that is one of
    /// `accepted` and that the agent can encode.
    pub fn choose_codec(&self, accepted: &[Codec]) -> Option<Codec> {
        self.formats.iter().find_map(|format| {
            accepted
                .iter()
                .find(|codec| codec.can_encode() && matches(format, codec))
                .cloned()
        })
    }

    /// The telephone-event payload type at 8 kHz, if listed.
    pub fn telephone_event(&self) -> Option<u8> {
        self.telephone_event_at(8000)
    }

    /// The telephone-event payload type at `clock_rate` (the codec's), if
    /// listed.
    pub fn telephone_event_at(&self, clock_rate: u32) -> Option<u8> {
        self.formats
            .iter()
            .find(|f| {
                f.encoding.eq_ignore_ascii_case("telephone-event") && f.clock_rate == clock_rate
            })
            .map(|f| f.payload_type)
    }
}

fn matches(format: &SdpFormat, codec: &Codec) -> bool {
    format.encoding.eq_ignore_ascii_case(codec.encoding())
        && format.clock_rate == codec.clock_rate()
}

/// Encoding of the static payload types an `rtpmap` may omit.
fn static_format(payload_type: u8) -> Option<(&'static str, u32)> {
    match payload_type {
        0 => Some(("PCMU", 8000)),
        3 => Some(("GSM", 8000)),
        4 => Some(("G723", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        13 => Some(("CN", 8000)),
        18 => Some(("G729", 8000)),
        _ => None,
    }
}

/// Parses the first audio stream of an SDP body.
pub fn parse(body: &[u8]) -> Result<AudioDescription, String> {
    let text = std::str::from_utf8(body).map_err(|_| "SDP is not UTF-8".to_string())?;
    let mut session_addr: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut media_addr: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut rtpmaps: Vec<(u8, String, u32)> = Vec::new();
    let mut direction = Direction::SendRecv;
    let mut ptime = None;

    for line in text.lines().map(str::trim) {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                if audio.is_some() {
                    // Only the first audio stream matters.
                    in_audio = false;
                    continue;
                }
                let mut fields = value.split_whitespace();
                in_audio = fields.next() == Some("audio");
                if in_audio {
                    let port = fields
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| format!("bad m= line {line:?}"))?;
                    let _proto = fields.next();
                    let types = fields
                        .map(|f| f.parse::<u8>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| format!("bad payload type in {line:?}"))?;
                    audio = Some((port, types));
                }
            }
            "c" => {
                let addr = value
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .ok_or_else(|| format!("bad c= line {line:?}"))?;
                if in_audio {
                    media_addr = Some(addr);
                } else if audio.is_none() {
                    session_addr = Some(addr);
                }
            }
            "a" if in_audio || audio.is_none() => {
                let (name, rest) = value.split_once(':').unwrap_or((value, ""));
                match name {
                    "rtpmap" if in_audio => {
                        let mut parts = rest.split_whitespace();
                        let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
                        let mut encoding = parts.next().unwrap_or("").split('/');
                        let name = encoding.next().unwrap_or("");
                        let rate = encoding.next().and_then(|r| r.parse::<u32>().ok());
                        if let (Some(pt), Some(rate)) = (pt, rate) {
                            rtpmaps.push((pt, name.to_string(), rate));
                        }
                    }
                    "ptime" if in_audio => ptime = rest.trim().parse().ok(),
                    "sendrecv" => direction = Direction::SendRecv,
                    "sendonly" => direction = Direction::SendOnly,
                    "recvonly" => direction = Direction::RecvOnly,
                    "inactive" => direction = Direction::Inactive,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    let (port, types) = audio.ok_or_else(|| "no audio stream".to_string())?;
    if port == 0 {
        return Err("audio stream rejected (port 0)".to_string());
    }
    let addr = media_addr
        .or(session_addr)
        .ok_or_else(|| "no connection address (c=)".to_string())?;
    let formats = types
        .into_iter()
        .filter_map(|pt| {
            rtpmaps
                .iter()
                .find(|(p, _, _)| *p == pt)
                .map(|(_, name, rate)| (name.clone(), *rate))
                .or_else(|| static_format(pt).map(|(n, r)| (n.to_string(), r)))
                .map(|(encoding, clock_rate)| SdpFormat {
                    payload_type: pt,
                    encoding,
                    clock_rate,
                })
        })
        .collect();
    Ok(AudioDescription {
        addr,
        port,
        formats,
        direction,
        ptime,
    })
}

/// What to put in an SDP we write.
#[derive(Debug, Clone)]
pub(crate) struct LocalDescription<'a> {
    pub rtp: SocketAddr,
    pub session_id: u64,
    pub version: u64,
    pub codecs: &'a [Codec],
    pub telephone_event: Option<u8>,
    pub direction: Direction,
}

/// The telephone-event formats to write with `codecs`: one per clock rate
/// (RFC 4733: the event clock matches the codec's), the first at `pt`, the
/// next at `pt + 1`.
pub(crate) fn event_formats(codecs: &[Codec], pt: u8) -> Vec<(u8, u32)> {
    let mut rates: Vec<u32> = Vec::new();
    for c in codecs {
        if !rates.contains(&c.clock_rate()) {
            rates.push(c.clock_rate());
        }
    }
    rates
        .into_iter()
        .enumerate()
        .map(|(i, rate)| (pt.wrapping_add(i as u8), rate))
        .collect()
}

/// Writes an offer or answer with one audio stream.
pub(crate) fn write(local: &LocalDescription<'_>) -> String {
    let ip = local.rtp.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut types: Vec<String> = local
        .codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    let events = local
        .telephone_event
        .map(|pt| event_formats(local.codecs, pt))
        .unwrap_or_default();
    for (pt, _) in &events {
        types.push(pt.to_string());
    }
    let mut sdp = format!(
        "v=0\r\no=sbagent {id} {version} IN {family} {ip}\r\ns=sbagent\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {types}\r\n",
        id = local.session_id,
        version = local.version,
        port = local.rtp.port(),
        types = types.join(" "),
    );
    for codec in local.codecs {
        let channels = codec
            .rtpmap_channels()
            .map(|c| format!("/{c}"))
            .unwrap_or_default();
        sdp.push_str(&format!(
            "a=rtpmap:{} {}/{}{channels}\r\n",
            codec.payload_type(),
            codec.encoding(),
            codec.clock_rate()
        ));
        if *codec == Codec::Opus {
            sdp.push_str(&format!(
                "a=fmtp:{} useinbandfec=1\r\n",
                codec.payload_type()
            ));
        }
    }
    for (pt, rate) in events {
        sdp.push_str(&format!(
            "a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} 0-16\r\n"
        ));
    }
    sdp.push_str(&format!(
        "a=ptime:20\r\na={}\r\n",
        local.direction.attribute()
    ));
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_offer_parses_back() {
        let codecs = [Codec::Pcma, Codec::Pcmu];
        let text = write(&LocalDescription {
            rtp: "127.0.0.1:4000".parse().expect("addr"),
            session_id: 1,
            version: 2,
            codecs: &codecs,
            telephone_event: Some(101),
            direction: Direction::SendRecv,
        });
        assert!(text.contains("m=audio 4000 RTP/AVP 8 0 101\r\n"), "{text}");
        let parsed = parse(text.as_bytes()).expect("parses");
        assert_eq!(parsed.rtp_addr(), "127.0.0.1:4000".parse().expect("addr"));
        assert_eq!(parsed.formats.len(), 3);
        assert_eq!(parsed.telephone_event(), Some(101));
        assert_eq!(parsed.ptime, Some(20));
        assert_eq!(
            parsed.choose_codec(&[Codec::Pcmu, Codec::Pcma]),
            Some(Codec::Pcma)
        );
        assert_eq!(parsed.choose_codec(&[Codec::Pcmu]), Some(Codec::Pcmu));
    }

    #[test]
    fn opus_offer_has_events_at_both_rates() {
        let codecs = [Codec::Opus, Codec::Pcmu];
        let text = write(&LocalDescription {
            rtp: "127.0.0.1:4000".parse().expect("addr"),
            session_id: 1,
            version: 1,
            codecs: &codecs,
            telephone_event: Some(101),
            direction: Direction::SendRecv,
        });
        assert!(
            text.contains("m=audio 4000 RTP/AVP 111 0 101 102\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"), "{text}");
        assert!(
            text.contains("a=rtpmap:101 telephone-event/48000\r\n"),
            "{text}"
        );
        assert!(
            text.contains("a=rtpmap:102 telephone-event/8000\r\n"),
            "{text}"
        );
        let parsed = parse(text.as_bytes()).expect("parses");
        assert_eq!(parsed.choose_codec(&[Codec::Opus]), Some(Codec::Opus));
        assert_eq!(parsed.telephone_event_at(48_000), Some(101));
        assert_eq!(parsed.telephone_event(), Some(102));
    }

    #[test]
    fn media_level_connection_and_static_types() {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                    m=audio 5004 RTP/AVP 18 0 96\r\nc=IN IP4 10.0.0.2\r\n\
                    a=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n";
        let parsed = parse(text.as_bytes()).expect("parses");
        assert_eq!(parsed.addr.to_string(), "10.0.0.2");
        assert_eq!(parsed.formats[0].encoding, "G729");
        assert_eq!(parsed.telephone_event(), Some(96));
        assert_eq!(parsed.direction, Direction::SendOnly);
        assert_eq!(parsed.direction.answer(), Direction::RecvOnly);
        assert_eq!(parsed.choose_codec(&[Codec::Pcma]), None);
        assert_eq!(
            parsed.choose_codec(&[Codec::Pcma, Codec::Pcmu]),
            Some(Codec::Pcmu)
        );
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        assert!(parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n").is_err());
        assert!(parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n").is_err());
        assert!(parse(b"v=0\r\nm=audio 5000 RTP/AVP 0\r\n").is_err());
        assert!(parse(b"v=0\r\nc=IN IP4 x\r\nm=audio 5000 RTP/AVP 0\r\n").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
