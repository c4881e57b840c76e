//! Draining a leg's UDP socket with as few system calls as possible.
//!
//! On Linux `recvmmsg` reads up to [`BATCH`] datagrams in one call, and a
//! short batch tells us the socket is empty: one call per leg per tick in
//! steady state instead of two (`recvfrom` until `EWOULDBLOCK`). Elsewhere
//! it falls back to `recv_from`. The buffers are allocated once per worker.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams per `recvmmsg` call.
pub(crate) const BATCH: usize = 8;
/// Largest datagram read.
pub(crate) const DATAGRAM: usize = 2048;

pub(crate) struct RecvBatch {
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    /// Length and source of each datagram of the last `recv`.
    got: [(usize, Option<SocketAddr>); BATCH],
    #[cfg(target_os = "linux")]
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
            got: [(0, None); BATCH],
            #[cfg(target_os = "linux")]
            // SAFETY: sockaddr_storage is plain old data; all zeros is valid.
            addrs: Box::new(unsafe { std::mem::zeroed() }),
        }
    }

    /// Reads up to [`BATCH`] datagrams waiting on `socket` (non-blocking).
    /// Returns how many; [`RecvBatch::datagram`] gives each. Fewer than
    /// `BATCH` means the socket is empty (or failed).
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> usize {
        self.recv_up_to(socket, BATCH)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and its source.
    pub(crate) fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, src) = *self.got.get(i)?;
        Some((&self.bufs[i][..len], src?))
    }

    #[cfg(target_os = "linux")]
    fn recv_up_to(&mut self, socket: &UdpSocket, want: usize) -> usize {
        use std::os::fd::AsRawFd;
        // SAFETY: the iovecs and headers point into `self.bufs` and
        // `self.addrs`, which outlive the call and are not otherwise
        // borrowed; lengths match the buffers. mmsghdr/iovec are plain data.
        let n = unsafe {
            let mut iov: [libc::iovec; BATCH] = std::mem::zeroed();
            let mut hdrs: [libc::mmsghdr; BATCH] = std::mem::zeroed();
            for i in 0..want {
                iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
                iov[i].iov_len = DATAGRAM;
                hdrs[i].msg_hdr.msg_iov = &mut iov[i];
                hdrs[i].msg_hdr.msg_iovlen = 1;
                hdrs[i].msg_hdr.msg_name =
                    (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                hdrs[i].msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            }
            let r = libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                want as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            );
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) {
                    tracing::trace!("recvmmsg: {e}");
                }
                return 0;
            }
            let r = r as usize;
            for (i, h) in hdrs.iter().enumerate().take(r) {
                let len = (h.msg_len as usize).min(DATAGRAM);
                self.got[i] = (len, to_socket_addr(&self.addrs[i]));
            }
            r
        };
        n
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_up_to(&mut self, socket: &UdpSocket, want: usize) -> usize {
        let mut got = 0;
        while got < want {
            match socket.recv_from(&mut self.bufs[got]) {
                Ok((n, src)) => {
                    self.got[got] = (n, Some(src));
                    got += 1;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        got
    }
}

#[cfg(target_os = "linux")]
fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_what_is_waiting_with_sources() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..11u8 {
            tx.send_to(&[i; 5], rx.local_addr().unwrap()).unwrap();
        }
        let mut batch = RecvBatch::new();
        // Loopback delivery is synchronous; all 11 are queued.
        assert_eq!(batch.recv(&rx), BATCH);
        let (data, src) = batch.datagram(0).unwrap();
        assert_eq!(data, &[0; 5]);
        assert_eq!(src, tx.local_addr().unwrap());
        assert_eq!(batch.recv(&rx), 3);
        assert_eq!(batch.datagram(2).unwrap().0, &[10; 5]);
        assert_eq!(batch.recv(&rx), 0);
    }
}
