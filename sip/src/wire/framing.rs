//! Cutting a SIP byte stream (TCP) into messages by Content-Length
//! (RFC 3261 §18.3), with RFC 5626 keepalives.

use bytes::{Buf, BytesMut};
use memchr::memmem;

/// The largest message we accept, head and body.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;

/// One unit read off a stream.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    /// A keepalive ping (CRLF CRLF), answered with a pong (CRLF).
    Ping,
    /// A whole message: head and Content-Length bytes of body.
    Message(BytesMut),
    /// A head whose Content-Length we cannot frame by (unreadable or too
    /// big). It can still be answered, but the rest of the stream cannot be
    /// trusted: the connection must close after the answer.
    Unframeable {
        head: BytesMut,
        code: u16,
        reason: &'static str,
    },
}

/// The stream cannot be read as SIP (no end of headers within
/// [`MAX_MESSAGE`] bytes): close it.
#[derive(Debug, PartialEq)]
pub(crate) struct Overflow;

#[derive(Default)]
pub(crate) struct Framer {
    buf: BytesMut,
}

impl Framer {
    pub(crate) fn new() -> Framer {
        Framer {
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// The buffer to read more bytes into.
    pub(crate) fn buffer(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        &mut self.buf
    }

    /// The next complete frame, if the buffer holds one.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, Overflow> {
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.len() < 4 && b"\r\n\r\n".starts_with(&self.buf) {
                // Maybe the start of a ping: wait for the rest.
                return Ok(None);
            }
            if self.buf.starts_with(b"\r\n") {
                // A pong, or CRLF before a start line (ignored, RFC 3261 §7.5).
                self.buf.advance(2);
                continue;
            }
            break;
        }
        let Some(head_end) = memmem::find(&self.buf, b"\r\n\r\n") else {
            return if self.buf.len() > MAX_MESSAGE {
                Err(Overflow)
            } else {
                Ok(None)
            };
        };
        let head_len = head_end + 4;
        let content_length = match content_length(&self.buf[..head_len]) {
            Ok(length) => length,
            Err(reason) => {
                return Ok(Some(Frame::Unframeable {
                    head: self.buf.split_to(head_len),
                    code: 400,
                    reason,
                }))
            }
        };
        let total = head_len.saturating_add(content_length);
        if total > MAX_MESSAGE {
            return Ok(Some(Frame::Unframeable {
                head: self.buf.split_to(head_len),
                code: 513,
                reason: "Message Too Large",
            }));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.buf.split_to(total))))
    }
}

/// The Content-Length of a head (0 when absent, as rsipstack does).
fn content_length(head: &[u8]) -> Result<usize, &'static str> {
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            return std::str::from_utf8(line[colon + 1..].trim_ascii())
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or("Bad Content-Length");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        format!(
            "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn feed(framer: &mut Framer, bytes: &[u8]) {
        framer.buffer().extend_from_slice(bytes);
    }

    #[test]
    fn frames_back_to_back_messages_and_keepalives() {
        let mut framer = Framer::new();
        let stream = format!("\r\n\r\n{}\r\n{}", message("hello"), message(""));
        feed(&mut framer, stream.as_bytes());
        assert_eq!(framer.next_frame(), Ok(Some(Frame::Ping)));
        let Ok(Some(Frame::Message(first))) = framer.next_frame() else {
            panic!("no first message");
        };
        assert!(first.ends_with(b"\r\n\r\nhello"));
        let Ok(Some(Frame::Message(second))) = framer.next_frame() else {
            panic!("no second message");
        };
        assert_eq!(&second[..], message("").as_bytes());
        assert_eq!(framer.next_frame(), Ok(None));
    }

    #[test]
    fn waits_for_split_heads_and_bodies() {
        let mut framer = Framer::new();
        let whole = message("0123456789");
        let (a, b) = whole.as_bytes().split_at(20);
        feed(&mut framer, a);
        assert_eq!(framer.next_frame(), Ok(None));
        let (b, c) = b.split_at(b.len() - 4);
        feed(&mut framer, b);
        assert_eq!(framer.next_frame(), Ok(None));
        feed(&mut framer, c);
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Message(_)))));
    }

    #[test]
    fn bad_or_huge_content_length_is_unframeable() {
        let mut framer = Framer::new();
        feed(
            &mut framer,
            b"INFO sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\nrest",
        );
        assert!(matches!(
            framer.next_frame(),
            Ok(Some(Frame::Unframeable { code: 400, .. }))
        ));
        let mut framer = Framer::new();
        feed(
            &mut framer,
            b"INFO sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n",
        );
        assert!(matches!(
            framer.next_frame(),
            Ok(Some(Frame::Unframeable { code: 513, .. }))
        ));
    }

    #[test]
    fn endless_head_overflows() {
        let mut framer = Framer::new();
        feed(&mut framer, &vec![b'x'; MAX_MESSAGE + 1]);
        assert_eq!(framer.next_frame(), Err(Overflow));
    }
}
