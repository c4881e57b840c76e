//! The hand-over between a WebRTC leg on its media worker and its transport
//! task: plain (decrypted) RTP packets both ways, in bounded queues of
//! recycled buffers, so neither side allocates per packet once warm and a
//! stalled side cannot make the other's memory grow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// Packets queued each way at most (1.3 s of 20 ms audio): past that the
/// oldest is dropped.
pub(crate) const QUEUE_PACKETS: usize = 64;
/// Capacity of each recycled buffer (a packet larger than this still goes
/// through, growing its buffer once).
const PACKET_CAPACITY: usize = 1500;

/// One direction: queued packets and spare buffers.
struct Queue {
    packets: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            packets: VecDeque::with_capacity(QUEUE_PACKETS),
            spare: (0..QUEUE_PACKETS)
                .map(|_| Vec::with_capacity(PACKET_CAPACITY))
                .collect(),
        }
    }

    /// Copies `data` in; returns false if an old packet had to be dropped.
    fn push(&mut self, data: &[u8]) -> bool {
        let mut dropped = false;
        let mut buf = match self.spare.pop() {
            Some(buf) => buf,
            None => match self.packets.pop_front() {
                Some(oldest) => {
                    dropped = true;
                    oldest
                }
                // Only if QUEUE_PACKETS were 0.
                None => Vec::with_capacity(PACKET_CAPACITY),
            },
        };
        buf.clear();
        buf.extend_from_slice(data);
        self.packets.push_back(buf);
        !dropped
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        self.packets.pop_front()
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < QUEUE_PACKETS {
            self.spare.push(buf);
        }
    }
}

/// Shared by one WebRTC leg (on a media worker) and its transport task.
pub(crate) struct Pipe {
    /// Decrypted RTP from the browser, for the leg.
    inbound: Mutex<Queue>,
    /// Plain RTP from the leg, for the transport to protect and send.
    outbound: Mutex<Queue>,
    /// Wakes the transport task: outbound packets, or closing.
    pub(crate) wake: Notify,
    /// The leg is gone: the transport stops.
    closed: AtomicBool,
    /// ICE and DTLS are up (SRTP keys exist); until then the leg's packets
    /// are not queued.
    connected: AtomicBool,
    /// Packets dropped because a queue was full.
    pub(crate) overflows: AtomicU64,
}

fn lock(q: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    q.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pipe {
    pub(crate) fn new() -> Pipe {
        Pipe {
            inbound: Mutex::new(Queue::new()),
            outbound: Mutex::new(Queue::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            overflows: AtomicU64::new(0),
        }
    }

    // The leg's side (media worker).

    /// Queues one RTP packet to send and wakes the transport.
    pub(crate) fn send(&self, packet: &[u8]) -> bool {
        if !self.connected.load(Ordering::Acquire) {
            return false;
        }
        if !lock(&self.outbound).push(packet) {
            self.overflows.fetch_add(1, Ordering::Relaxed);
        }
        self.wake.notify_one();
        true
    }

    /// The next packet received, if any; give it back with
    /// [`Pipe::recycle_received`].
    pub(crate) fn next_received(&self) -> Option<Vec<u8>> {
        lock(&self.inbound).pop()
    }

    pub(crate) fn recycle_received(&self, buf: Vec<u8>) {
        lock(&self.inbound).recycle(buf);
    }

    /// The leg closed: the transport ends (and frees the port).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    // The transport's side.

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    /// Hands one decrypted RTP packet (header written by `write`) to the leg.
    pub(crate) fn deliver(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut q = lock(&self.inbound);
        let mut buf = match q.spare.pop() {
            Some(buf) => buf,
            None => {
                self.overflows.fetch_add(1, Ordering::Relaxed);
                match q.packets.pop_front() {
                    Some(oldest) => oldest,
                    None => Vec::with_capacity(PACKET_CAPACITY),
                }
            }
        };
        buf.clear();
        write(&mut buf);
        q.packets.push_back(buf);
    }

    /// The next packet the leg sent; give it back with
    /// [`Pipe::recycle_sent`].
    pub(crate) fn next_sent(&self) -> Option<Vec<u8>> {
        lock(&self.outbound).pop()
    }

    pub(crate) fn recycle_sent(&self, buf: Vec<u8>) {
        lock(&self.outbound).recycle(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_bounded_and_recycle_buffers() {
        let pipe = Pipe::new();
        assert!(
            !pipe.send(&[1, 2, 3]),
            "nothing is queued before DTLS is up"
        );
        assert!(pipe.next_sent().is_none());
        pipe.set_connected(true);
        for i in 0..(QUEUE_PACKETS as u8 + 3) {
            assert!(pipe.send(&[i]));
        }
        assert_eq!(pipe.overflows.load(Ordering::Relaxed), 3);
        let first = pipe.next_sent().unwrap();
        assert_eq!(first, [3], "the oldest were dropped");
        pipe.recycle_sent(first);
        let mut n = 1;
        while let Some(p) = pipe.next_sent() {
            pipe.recycle_sent(p);
            n += 1;
        }
        assert_eq!(n, QUEUE_PACKETS);

        pipe.deliver(|b| b.extend_from_slice(&[9, 9]));
        let got = pipe.next_received().unwrap();
        assert_eq!(got, [9, 9]);
        pipe.recycle_received(got);
        assert!(pipe.next_received().is_none());
    }
}
