//! The `collectDigits` state machine (like FreeSWITCH `play_and_get_digits`
//! or a Jambonz gather), free of JavaScript so its rules are testable alone.
//!
//! Rules: a terminator ends the collection (once `min` digits are in; before
//! that it is ignored) and is not part of the digits; reaching `max` ends it;
//! timers run only while no prompt plays: `first_digit_timeout` until the
//! first digit, `inter_digit_timeout` after each digit.

use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CollectSpec {
    pub min: usize,
    pub max: usize,
    pub terminators: Vec<char>,
    pub first_digit_timeout: Duration,
    pub inter_digit_timeout: Duration,
}

/// Why a collection ended (`reason` in JavaScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CollectReason {
    Terminator,
    Max,
    Timeout,
    Hangup,
    /// Set by the runtime, not the state machine: the digits failed `min` or
    /// `pattern` on the last attempt.
    Invalid,
}

impl CollectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectReason::Terminator => "terminator",
            CollectReason::Max => "max",
            CollectReason::Timeout => "timeout",
            CollectReason::Hangup => "hangup",
            CollectReason::Invalid => "invalid",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Collector {
    spec: CollectSpec,
    digits: String,
    prompt_playing: bool,
    deadline: Option<Instant>,
    done: Option<CollectReason>,
}

impl Collector {
    pub fn new(spec: CollectSpec, prompt_playing: bool, now: Instant) -> Collector {
        let mut collector = Collector {
            spec,
            digits: String::new(),
            prompt_playing,
            deadline: None,
            done: None,
        };
        if !prompt_playing {
            collector.arm(now);
        }
        collector
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }

    pub fn done(&self) -> Option<CollectReason> {
        self.done
    }

    /// When the running timer expires (none while the prompt plays or once done).
    pub fn deadline(&self) -> Option<Instant> {
        if self.done.is_some() {
            None
        } else {
            self.deadline
        }
    }

    /// A digit arrived; returns the reason if it ended the collection.
    pub fn digit(&mut self, digit: char, now: Instant) -> Option<CollectReason> {
        if self.done.is_some() {
            return self.done;
        }
        if self.spec.terminators.contains(&digit) {
            if self.digits.len() >= self.spec.min {
                return self.finish(CollectReason::Terminator);
            }
            // Too early for a terminator (e.g. a stray `#` first): ignored.
            return None;
        }
        self.digits.push(digit);
        if self.digits.len() >= self.spec.max {
            return self.finish(CollectReason::Max);
        }
        if !self.prompt_playing {
            self.arm(now);
        }
        None
    }

    /// The prompt stopped (finished or interrupted): timers start now.
    pub fn prompt_ended(&mut self, now: Instant) {
        if self.prompt_playing {
            self.prompt_playing = false;
            if self.done.is_none() {
                self.arm(now);
            }
        }
    }

    /// Ends the collection if its timer expired at `now`.
    pub fn check_timeout(&mut self, now: Instant) -> Option<CollectReason> {
        match self.deadline() {
            Some(deadline) if deadline <= now => self.finish(CollectReason::Timeout),
            _ => None,
        }
    }

    /// The call ended.
    pub fn hangup(&mut self) -> CollectReason {
        self.finish(CollectReason::Hangup)
            .unwrap_or(CollectReason::Hangup)
    }

    fn finish(&mut self, reason: CollectReason) -> Option<CollectReason> {
        if self.done.is_none() {
            self.done = Some(reason);
            self.deadline = None;
        }
        self.done
    }

    fn arm(&mut self, now: Instant) {
        let wait = if self.digits.is_empty() {
            self.spec.first_digit_timeout
        } else {
            self.spec.inter_digit_timeout
        };
        self.deadline = Some(now + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CollectSpec {
        CollectSpec {
            min: 1,
            max: 4,
            terminators: vec!['#'],
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(2),
        }
    }

    fn feed(c: &mut Collector, digits: &str, now: Instant) -> Option<CollectReason> {
        digits.chars().find_map(|d| c.digit(d, now))
    }

    #[test]
    fn terminator_ends_and_is_not_included() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(), false, t0);
        assert_eq!(feed(&mut c, "12#", t0), Some(CollectReason::Terminator));
        assert_eq!(c.digits(), "12");
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn max_ends() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(), false, t0);
        assert_eq!(feed(&mut c, "123", t0), None);
        assert_eq!(c.digit('4', t0), Some(CollectReason::Max));
        assert_eq!(c.digits(), "1234");
    }

    #[test]
    fn early_terminator_is_ignored_unless_min_is_zero() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(), false, t0);
        assert_eq!(c.digit('#', t0), None);
        assert_eq!(feed(&mut c, "5#", t0), Some(CollectReason::Terminator));
        assert_eq!(c.digits(), "5");

        let mut skip = Collector::new(CollectSpec { min: 0, ..spec() }, false, t0);
        assert_eq!(skip.digit('#', t0), Some(CollectReason::Terminator));
        assert_eq!(skip.digits(), "");
    }

    #[test]
    fn first_digit_then_inter_digit_timeout() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(), false, t0);
        assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(5)));
        let t1 = t0 + Duration::from_secs(4);
        assert_eq!(c.digit('1', t1), None);
        assert_eq!(c.deadline(), Some(t1 + Duration::from_secs(2)));
        assert_eq!(c.check_timeout(t1 + Duration::from_secs(1)), None);
        assert_eq!(
            c.check_timeout(t1 + Duration::from_secs(2)),
            Some(CollectReason::Timeout)
        );
        assert_eq!(c.digits(), "1");
    }

    #[test]
    fn no_timer_while_the_prompt_plays() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(), true, t0);
        assert_eq!(c.deadline(), None);
        assert_eq!(c.digit('7', t0 + Duration::from_secs(1)), None);
        assert_eq!(
            c.deadline(),
            None,
            "digits during the prompt do not start timers"
        );
        let end = t0 + Duration::from_secs(3);
        c.prompt_ended(end);
        assert_eq!(c.deadline(), Some(end + Duration::from_secs(2)));
    }

    #[test]
    fn hangup_keeps_digits() {
        let t0 = Instant::now();
        let mut c = Collector::new(spec(), false, t0);
        feed(&mut c, "9", t0);
        assert_eq!(c.hangup(), CollectReason::Hangup);
        assert_eq!(c.digits(), "9");
        assert_eq!(
            c.digit('1', t0),
            Some(CollectReason::Hangup),
            "done stays done"
        );
    }
}
