//! Which of our addresses a peer reaches us at, for Contact and Via when
//! the UDP socket is bound to a wildcard address (0.0.0.0 / ::). The
//! kernel's route to the peer gives the source address; answers are cached
//! per peer address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;

/// Peers remembered at most; the cache is cleared when full (it refills
/// one route lookup per peer).
const CACHE_LIMIT: usize = 4096;

pub(crate) struct LocalIps {
    bound: IpAddr,
    cache: Mutex<HashMap<IpAddr, IpAddr>>,
}

impl LocalIps {
    pub(crate) fn new(bound: IpAddr) -> LocalIps {
        LocalIps {
            bound,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Our address as `peer` sees it.
    pub(crate) fn for_peer(&self, peer: IpAddr) -> IpAddr {
        if !self.bound.is_unspecified() {
            return self.bound;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ip) = cache.get(&peer) {
            return *ip;
        }
        let ip = route_source(peer).unwrap_or(match peer {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(peer, ip);
        ip
    }
}

/// The source address the kernel picks to reach `peer` (no packet is sent:
/// connecting a UDP socket only selects a route).
fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).ok()?;
    socket.connect((peer, 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_bind_address_is_used_as_is() {
        let ips = LocalIps::new("192.0.2.1".parse().unwrap());
        assert_eq!(
            ips.for_peer("198.51.100.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn wildcard_uses_the_route_to_the_peer() {
        let ips = LocalIps::new(Ipv4Addr::UNSPECIFIED.into());
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(ips.for_peer(loopback), loopback);
        assert_eq!(ips.for_peer(loopback), loopback);
    }
}
