//! How simulated outbound calls (`dial`) and HTTP requests (`fetch`) turn
//! out: scripted by the test, since the simulator has no network.

use std::sync::Arc;

use tokio::time::Duration;

use super::call::SimCallBuilder;
use crate::host::{FetchError, FetchRequest, FetchResponse};

/// How long a dialed call rings before it is answered, by default.
pub const DEFAULT_ANSWER_AFTER: Duration = Duration::from_secs(1);

/// How a dial ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialOutcome {
    Answer,
    /// A final failure response (e.g. 486 Busy Here).
    Fail {
        code: u16,
        reason: String,
    },
    /// Nobody answers: the dial times out (408).
    NoAnswer,
}

type CalleeScript = Arc<dyn Fn(SimCallBuilder) -> SimCallBuilder + Send + Sync>;

/// What happens when a scenario dials a matching URI.
#[derive(Clone)]
pub struct SimDial {
    pub outcome: DialOutcome,
    /// When the answer or failure comes.
    pub after: Duration,
    callee: Option<CalleeScript>,
}

impl SimDial {
    /// Answered after `after` (if within the dial's timeout).
    pub fn answer_after(after: Duration) -> SimDial {
        SimDial {
            outcome: DialOutcome::Answer,
            after,
            callee: None,
        }
    }

    /// Fails with `code` after `after`.
    pub fn fail(code: u16, reason: &str, after: Duration) -> SimDial {
        SimDial {
            outcome: DialOutcome::Fail {
                code,
                reason: reason.to_string(),
            },
            after,
            callee: None,
        }
    }

    /// Rings until the dial's timeout.
    pub fn no_answer() -> SimDial {
        SimDial {
            outcome: DialOutcome::NoAnswer,
            after: Duration::ZERO,
            callee: None,
        }
    }

    /// Scripts the answered call (keys it presses, when it hangs up; times
    /// count from the answer).
    pub fn callee(
        mut self,
        script: impl Fn(SimCallBuilder) -> SimCallBuilder + Send + Sync + 'static,
    ) -> SimDial {
        self.callee = Some(Arc::new(script));
        self
    }

    pub(crate) fn script(&self, builder: SimCallBuilder) -> SimCallBuilder {
        match &self.callee {
            Some(script) => script(builder),
            None => builder,
        }
    }
}

impl Default for SimDial {
    fn default() -> Self {
        SimDial::answer_after(DEFAULT_ANSWER_AFTER)
    }
}

/// The usual reason phrase of a SIP status.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Failed",
    }
}

type Responder =
    Arc<dyn Fn(&FetchRequest) -> Option<Result<FetchResponse, FetchError>> + Send + Sync>;

/// Scripted answers to `fetch`: the first responder that answers wins;
/// a request nobody answers is not allowed (as for a host the application
/// does not allow).
#[derive(Clone, Default)]
pub struct SimFetch {
    responders: Vec<Responder>,
}

impl SimFetch {
    /// Answers requests whose URL starts with `prefix` with `status` and `body`.
    pub fn respond(&mut self, prefix: &str, status: u16, body: &str) {
        let prefix = prefix.to_string();
        let response = FetchResponse {
            status,
            headers: vec![(
                "content-type".to_string(),
                if body.trim_start().starts_with(['{', '[']) {
                    "application/json".to_string()
                } else {
                    "text/plain".to_string()
                },
            )],
            body: body.as_bytes().to_vec(),
        };
        self.responders.push(Arc::new(move |request| {
            request
                .url
                .starts_with(&prefix)
                .then(|| Ok(response.clone()))
        }));
    }

    /// Answers with a function (`None`: not this one).
    pub fn respond_with(
        &mut self,
        responder: impl Fn(&FetchRequest) -> Option<Result<FetchResponse, FetchError>>
            + Send
            + Sync
            + 'static,
    ) {
        self.responders.push(Arc::new(responder));
    }

    pub(crate) fn answer(&self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        self.responders
            .iter()
            .find_map(|r| r(request))
            .unwrap_or_else(|| Err(FetchError::NotAllowed(host_of(&request.url))))
    }
}

/// The host part of an http(s) URL.
pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.to_string()
}

/// The user part of a SIP URI (`sip:sales@host` → `sales`).
pub(crate) fn user_of(uri: &str) -> String {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let user = rest.split(['@', ';', '?']).next().unwrap_or_default();
    user.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_uri_parts() {
        assert_eq!(
            host_of("https://user@api.example.com:8443/x?y"),
            "api.example.com:8443"
        );
        assert_eq!(host_of("http://h"), "h");
        assert_eq!(user_of("sip:sales@127.0.0.1:5070"), "sales");
        assert_eq!(user_of("tel:+15551234"), "+15551234");
    }

    #[test]
    fn unanswered_fetches_are_not_allowed() {
        let mut fetch = SimFetch::default();
        fetch.respond("https://api.example.com/", 200, "{}");
        let request = |url: &str| FetchRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            fetch
                .answer(&request("https://api.example.com/a"))
                .unwrap()
                .status,
            200
        );
        assert_eq!(
            fetch.answer(&request("https://evil.example.net/")),
            Err(FetchError::NotAllowed("evil.example.net".into()))
        );
    }
}
