//! Client transactions (RFC 3261 §17.1): a request goes out, is
//! retransmitted over UDP on the T1-doubling schedule, and its responses come
//! back through a channel registered under its branch and method.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Request, Response};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::message;
use crate::agent::AgentCore;
use crate::error::{AgentError, Result};

/// Key of a client transaction: the responses carry our branch and the
/// CSeq method (a CANCEL shares the INVITE's branch).
pub(crate) fn key(branch: &str, method: &str) -> String {
    format!("{branch} {}", method.to_ascii_uppercase())
}

/// Responses of one client transaction; unregisters itself when dropped.
pub(crate) struct Responses {
    core: Arc<AgentCore>,
    key: String,
    receiver: mpsc::UnboundedReceiver<Response>,
}

impl Responses {
    pub fn register(core: &Arc<AgentCore>, key: String) -> Responses {
        let receiver = core.register_transaction(&key);
        Responses {
            core: core.clone(),
            key,
            receiver,
        }
    }

    pub async fn recv(&mut self) -> Option<Response> {
        self.receiver.recv().await
    }
}

impl Drop for Responses {
    fn drop(&mut self) {
        self.core.unregister_transaction(&self.key);
    }
}

/// Retransmission intervals: T1, 2·T1, 4·T1, ... capped at `cap`.
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(t1: Duration, cap: Duration) -> Backoff {
        Backoff { next: t1, cap }
    }

    pub fn next_interval(&mut self) -> Duration {
        let current = self.next;
        self.next = (self.next * 2).min(self.cap);
        current
    }
}

/// Runs a non-INVITE client transaction to its final response (Timer F:
/// 64·T1 without one is an error).
pub(crate) async fn non_invite(
    core: &Arc<AgentCore>,
    request: Request,
    to: SocketAddr,
) -> Result<Response> {
    let method = request.method.to_string();
    let branch = message::branch(&request.headers)
        .ok_or_else(|| AgentError::InvalidState("request without a Via branch".into()))?;
    let mut responses = Responses::register(core, key(&branch, &method));
    let bytes = request.to_bytes();
    core.send(to, bytes.clone()).await?;

    let timeout = core.t1() * 64;
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new(core.t1(), core.t2());
    let mut retransmit_at = Instant::now() + backoff.next_interval();
    loop {
        tokio::select! {
            response = responses.recv() => {
                let Some(response) = response else {
                    return Err(AgentError::Closed);
                };
                if response.status_code.code() >= 200 {
                    return Ok(response);
                }
                // Proceeding: keep retransmitting, at T2 (§17.1.2.2).
                backoff = Backoff::new(core.t2(), core.t2());
            }
            _ = tokio::time::sleep_until(retransmit_at.min(deadline)) => {
                if Instant::now() >= deadline {
                    return Err(AgentError::NoResponse { method, after: timeout });
                }
                if core.transport.is_reliable() {
                    retransmit_at = deadline;
                } else {
                    core.send(to, bytes.clone()).await?;
                    retransmit_at = Instant::now() + backoff.next_interval();
                }
            }
        }
    }
}

/// Runs an in-dialog INVITE client transaction (a re-INVITE) to its final
/// response, which the caller ACKs: retransmitted over UDP until the
/// first response, 64·T1 for the first response and again for the final.
pub(crate) async fn invite(
    core: &Arc<AgentCore>,
    request: &Request,
    to: SocketAddr,
) -> Result<(Response, Responses)> {
    let branch = message::branch(&request.headers)
        .ok_or_else(|| AgentError::InvalidState("request without a Via branch".into()))?;
    let mut responses = Responses::register(core, key(&branch, "INVITE"));
    let bytes = request.to_bytes();
    core.send(to, bytes.clone()).await?;
    let timeout = core.t1() * 64;
    let mut deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new(core.t1(), timeout);
    let mut retransmit_at =
        (!core.transport.is_reliable()).then(|| Instant::now() + backoff.next_interval());
    loop {
        let retransmit = retransmit_at.unwrap_or(deadline).min(deadline);
        tokio::select! {
            response = responses.recv() => {
                let Some(response) = response else {
                    return Err(AgentError::Closed);
                };
                if response.status_code.code() >= 200 {
                    return Ok((response, responses));
                }
                retransmit_at = None;
                deadline = Instant::now() + timeout;
            }
            _ = tokio::time::sleep_until(retransmit) => {
                if Instant::now() >= deadline {
                    return Err(AgentError::NoResponse { method: "INVITE".into(), after: timeout });
                }
                core.send(to, bytes.clone()).await?;
                retransmit_at = Some(Instant::now() + backoff.next_interval());
            }
        }
    }
}

/// Keeps answering retransmissions of an INVITE's final response with its
/// `ack` for 64·T1 (UDP only: over TCP nothing is retransmitted).
pub(crate) fn linger(
    core: &Arc<AgentCore>,
    mut responses: Responses,
    ack: Vec<u8>,
    to: SocketAddr,
) {
    if core.transport.is_reliable() {
        return;
    }
    let core = core.clone();
    tokio::spawn(async move {
        let until = Instant::now() + core.t1() * 64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                response = responses.recv() => match response {
                    Some(r) if r.status_code.code() >= 200 => {
                        let _ = core.send(to, ack.clone()).await;
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let intervals: Vec<u128> = (0..6)
            .map(|_| backoff.next_interval().as_millis())
            .collect();
        assert_eq!(intervals, [500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(key("z9hG4bKx", "cancel"), "z9hG4bKx CANCEL");
    }
}
