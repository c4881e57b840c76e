//! RTP fixed header (RFC 3550 §5.1): parsing received packets and writing the
//! packets a leg sends. Parsing never panics and never allocates; the payload
//! is borrowed from the datagram.

/// Size of the fixed RTP header we write (no CSRCs, no extension).
pub const HEADER_LEN: usize = 12;

/// The fields of an RTP header that media handling needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// A parsed RTP packet borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    /// Payload without CSRCs, header extension and padding.
    pub payload: &'a [u8],
}

/// Why a datagram is not an RTP packet we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("datagram shorter than its RTP header")]
    Truncated,
    #[error("RTP version {0} (expected 2)")]
    BadVersion(u8),
    #[error("invalid RTP padding")]
    BadPadding,
    #[error("RTCP packet on the RTP port")]
    Rtcp,
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < HEADER_LEN {
            return Err(RtpError::Truncated);
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        // RTCP multiplexed on the RTP port (RFC 5761 §4): packet types 200-204
        // appear as marker + payload type 72-76.
        if (72..=76).contains(&(buf[1] & 0x7f)) {
            return Err(RtpError::Rtcp);
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_count = usize::from(buf[0] & 0x0f);

        let mut start = HEADER_LEN + 4 * csrc_count;
        if has_extension {
            // 16-bit profile, 16-bit length in 32-bit words, then the words.
            let ext = buf.get(start..start + 4).ok_or(RtpError::Truncated)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
        }
        if start > buf.len() {
            return Err(RtpError::Truncated);
        }
        let mut end = buf.len();
        if has_padding {
            let pad = usize::from(buf[end - 1]);
            if pad == 0 || pad > end - start {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            header: RtpHeader {
                marker: buf[1] & 0x80 != 0,
                payload_type: buf[1] & 0x7f,
                sequence: u16::from_be_bytes([buf[2], buf[3]]),
                timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
                ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            },
            payload: &buf[start..end],
        })
    }
}

impl RtpHeader {
    /// Writes the 12-byte header into `buf[..12]`. Returns `None` if `buf` is
    /// too short.
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let out = buf.get_mut(..HEADER_LEN)?;
        out[0] = 0x80; // version 2, no padding, no extension, no CSRC
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Some(HEADER_LEN)
    }
}

/// Extends 16-bit RTP sequence numbers to a monotonic 64-bit count across
/// wrap-around (the RFC 3550 appendix A.1 idea without the probation).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqExtender {
    highest: Option<u64>,
}

impl SeqExtender {
    /// The extended value of `seq`, interpreted as the closest value to the
    /// highest one seen so far (so it may be below it for reordered packets).
    /// Updates the highest.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            None => (1u64 << 16) + u64::from(seq), // room to go below the first
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                h.saturating_add_signed(delta)
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    pub fn reset(&mut self) {
        self.highest = None;
    }
}

/// Extends 32-bit RTP timestamps to 64 bits relative to a reference.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimestampExtender {
    reference: Option<u64>,
}

impl TimestampExtender {
    /// The extended value of `ts`, the closest one to the last reference.
    /// Moves the reference forward only (reordered packets do not drag it).
    pub fn extend(&mut self, ts: u32) -> u64 {
        let ext = match self.reference {
            None => (1u64 << 32) + u64::from(ts),
            Some(r) => {
                let delta = i64::from(ts.wrapping_sub(r as u32) as i32);
                r.saturating_add_signed(delta)
            }
        };
        if self.reference.is_none_or(|r| ext > r) {
            self.reference = Some(ext);
        }
        ext
    }

    pub fn reset(&mut self) {
        self.reference = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xfffe,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        }
    }

    #[test]
    fn write_then_parse() {
        let mut buf = [0u8; 20];
        let n = header().write(&mut buf).unwrap();
        assert_eq!(n, 12);
        buf[12..20].copy_from_slice(b"payload!");
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.payload, b"payload!");
        assert_eq!(&buf[..4], &[0x80, 0x88, 0xff, 0xfe]);
    }

    #[test]
    fn write_needs_room() {
        assert!(header().write(&mut [0u8; 11]).is_none());
    }

    #[test]
    fn parses_csrcs_extension_and_padding() {
        let mut buf = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        buf.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]); // extension, 1 word
        buf.extend_from_slice(&[7, 7, 7]); // payload
        buf.extend_from_slice(&[0, 0, 3]); // 3 bytes padding
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.payload, &[7, 7, 7]);
        assert_eq!(p.header.sequence, 1);
        assert_eq!(p.header.timestamp, 160);
        assert_eq!(p.header.ssrc, 9);
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::Truncated));
        let mut v1 = [0u8; 12];
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
        let mut rtcp = [0u8; 12];
        rtcp[0] = 0x80;
        rtcp[1] = 200; // SR
        assert_eq!(RtpPacket::parse(&rtcp), Err(RtpError::Rtcp));
        // Padding longer than the payload.
        let mut pad = [0u8; 14];
        pad[0] = 0xA0;
        pad[13] = 5;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding));
        // Zero padding count.
        pad[13] = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding));
        // CSRC count beyond the datagram.
        let mut cc = [0u8; 12];
        cc[0] = 0x8f;
        assert_eq!(RtpPacket::parse(&cc), Err(RtpError::Truncated));
        // Extension header beyond the datagram.
        let mut ext = [0u8; 16];
        ext[0] = 0x90;
        ext[14] = 0xff;
        ext[15] = 0xff;
        assert_eq!(RtpPacket::parse(&ext), Err(RtpError::Truncated));
    }

    /// Garbage of every length and many patterns never panics, and whatever
    /// parses has a payload inside the datagram.
    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let mut buf = [0u8; 64];
        for _ in 0..200_000 {
            let len = (next() % 65) as usize;
            for b in buf.iter_mut().take(len) {
                *b = next() as u8;
            }
            // Bias towards version 2 so deeper paths are exercised.
            if len > 0 && next() % 2 == 0 {
                buf[0] = (buf[0] & 0x3f) | 0x80;
            }
            if let Ok(p) = RtpPacket::parse(&buf[..len]) {
                assert!(p.payload.len() <= len.saturating_sub(HEADER_LEN));
            }
        }
    }

    #[test]
    fn sequence_extension_wraps() {
        let mut ext = SeqExtender::default();
        let a = ext.extend(65534);
        let b = ext.extend(65535);
        let c = ext.extend(0);
        let d = ext.extend(1);
        assert_eq!([b - a, c - b, d - c], [1, 1, 1]);
        // A reordered packet from before the wrap lands below the highest.
        let e = ext.extend(65533);
        assert_eq!(a - e, 1);
        assert_eq!(ext.highest(), Some(d));
    }

    #[test]
    fn timestamp_extension_wraps() {
        let mut ext = TimestampExtender::default();
        let a = ext.extend(u32::MAX - 159);
        let b = ext.extend(0);
        let c = ext.extend(160);
        assert_eq!([b - a, c - b], [160, 160]);
        let late = ext.extend(u32::MAX - 319);
        assert_eq!(a - late, 160);
    }
}
