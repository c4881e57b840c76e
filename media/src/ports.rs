//! RTP port allocation: one even port per leg from the configured range.
//!
//! The operating system is the source of truth for which ports are free: we
//! try to bind, round-robin through the range so a just-released port is not
//! handed out again at once (late packets of the old call would land in the
//! new one). Closing the socket releases the port.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::MediaError;

/// A bound RTP socket not yet attached to a leg (bind first, so the SDP answer
/// can carry the address the socket is really bound to).
#[derive(Debug)]
pub struct RtpSocket {
    pub(crate) socket: UdpSocket,
    local: SocketAddr,
}

impl RtpSocket {
    #[cfg(test)]
    pub(crate) fn from_parts(socket: UdpSocket, local: SocketAddr) -> RtpSocket {
        RtpSocket { socket, local }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

pub(crate) struct PortAllocator {
    ip: IpAddr,
    range: RangeInclusive<u16>,
    /// Even ports in the range, in order.
    first_even: u16,
    count: usize,
    next: AtomicUsize,
}

impl PortAllocator {
    pub(crate) fn new(ip: IpAddr, range: RangeInclusive<u16>) -> PortAllocator {
        let first = u32::from(*range.start());
        let first_even = first + first % 2;
        let end = u32::from(*range.end());
        let count = if first_even > end {
            0
        } else {
            ((end - first_even) / 2 + 1) as usize
        };
        let first_even = first_even.min(u32::from(u16::MAX)) as u16;
        PortAllocator {
            ip,
            range,
            first_even,
            count,
            next: AtomicUsize::new(0),
        }
    }

    /// Binds a socket on the next free even port.
    pub(crate) fn allocate(&self) -> Result<RtpSocket, MediaError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.count {
            let index = (start + i) % self.count;
            let port = self.first_even + 2 * index as u16;
            match UdpSocket::bind(SocketAddr::new(self.ip, port)) {
                Ok(socket) => {
                    // Continue after this port next time.
                    self.next.store(index + 1, Ordering::Relaxed);
                    let local = socket.local_addr()?;
                    return Ok(RtpSocket { socket, local });
                }
                Err(e)
                    if matches!(e.kind(), ErrorKind::AddrInUse | ErrorKind::PermissionDenied) =>
                {
                    continue
                }
                Err(e) => return Err(MediaError::Io(e)),
            }
        }
        Err(MediaError::NoFreePort(self.range.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn allocates_even_ports_in_range_until_exhausted() {
        // An odd start: the first usable port is the next even one.
        let ports = PortAllocator::new(LOCALHOST, 31_501..=31_506);
        let mut held = Vec::new();
        loop {
            match ports.allocate() {
                Ok(s) => held.push(s),
                Err(MediaError::NoFreePort(r)) => {
                    assert_eq!(r, 31_501..=31_506);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Some may be taken by other processes; what we got is even and in range.
        assert!(!held.is_empty() && held.len() <= 3);
        for s in &held {
            let p = s.local_addr().port();
            assert!(p % 2 == 0 && (31_502..=31_506).contains(&p), "{p}");
        }
        // Releasing one makes it available again.
        let freed = held.pop().unwrap().local_addr().port();
        let again = ports.allocate().unwrap();
        assert_eq!(again.local_addr().port(), freed);
    }

    #[test]
    fn empty_or_odd_only_range_has_no_ports() {
        let ports = PortAllocator::new(LOCALHOST, 31_521..=31_521);
        assert!(matches!(ports.allocate(), Err(MediaError::NoFreePort(_))));
        #[allow(clippy::reversed_empty_ranges)]
        let ports = PortAllocator::new(LOCALHOST, 10..=5);
        assert!(matches!(ports.allocate(), Err(MediaError::NoFreePort(_))));
    }

    #[test]
    fn skips_ports_in_use() {
        // Take an even port (found by asking the OS), then offer a range
        // that starts with it.
        for _ in 0..100 {
            let taken = UdpSocket::bind((LOCALHOST, 0)).unwrap();
            let p = taken.local_addr().unwrap().port();
            if p % 2 == 1 || p > 65_000 {
                continue;
            }
            let ports = PortAllocator::new(LOCALHOST, p..=p + 2);
            match ports.allocate() {
                Ok(s) => {
                    assert_eq!(s.local_addr().port(), p + 2);
                    return;
                }
                // p + 2 happened to be busy too: try elsewhere.
                Err(MediaError::NoFreePort(_)) => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free even port pair found");
    }
}
