//! RTP (RFC 3550) packet parsing and writing: only what a softphone needs.

/// A parsed RTP packet borrowing its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Parses an RTP packet; `None` for anything that is not RTP version 2 or
/// is truncated. RTCP multiplexed on the port (RFC 5761) is `None` too.
pub fn parse(packet: &[u8]) -> Option<RtpPacket<'_>> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let payload_type = packet[1] & 0x7f;
    if (72..=76).contains(&payload_type) {
        return None;
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut start = 12 + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let padding = if packet[0] & 0x20 != 0 {
        usize::from(*packet.last()?)
    } else {
        0
    };
    let end = packet.len().checked_sub(padding)?;
    if start > end {
        return None;
    }
    Some(RtpPacket {
        payload_type,
        marker: packet[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload: &packet[start..end],
    })
}

/// Writes an RTP packet without CSRCs, extension or padding.
pub fn write(packet: &RtpPacket<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + packet.payload.len());
    out.push(0x80);
    out.push(packet.payload_type & 0x7f | if packet.marker { 0x80 } else { 0 });
    out.extend_from_slice(&packet.sequence.to_be_bytes());
    out.extend_from_slice(&packet.timestamp.to_be_bytes());
    out.extend_from_slice(&packet.ssrc.to_be_bytes());
    out.extend_from_slice(packet.payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let payload = [1u8, 2, 3, 4];
        let packet = RtpPacket {
            payload_type: 8,
            marker: true,
            sequence: 65535,
            timestamp: 0xdead_beef,
            ssrc: 42,
            payload: &payload,
        };
        let bytes = write(&packet);
        assert_eq!(parse(&bytes), Some(packet));
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut bytes = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        bytes.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        bytes.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]); // extension, 1 word
        bytes.extend_from_slice(&[0xaa, 0xbb]); // payload
        bytes.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let packet = parse(&bytes).expect("valid packet");
        assert_eq!(packet.payload, &[0xaa, 0xbb]);
        assert_eq!(packet.ssrc, 3);
    }

    #[test]
    fn rejects_garbage_and_rtcp() {
        assert_eq!(parse(&[0x80, 0]), None);
        assert_eq!(parse(&[0x40; 20]), None);
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse(&rtcp), None);
        let bad_padding = [0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 50];
        assert_eq!(parse(&bad_padding), None);
    }
}
