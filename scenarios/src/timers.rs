//! `setTimeout`/`setInterval` bookkeeping: which timer fires next. Generic
//! over the payload (the JavaScript callback) so it is testable on its own.

use std::collections::{BTreeSet, HashMap};

use tokio::time::{Duration, Instant};

struct Entry<T> {
    due: Instant,
    seq: u64,
    every: Option<Duration>,
    payload: T,
}

pub(crate) struct TimerQueue<T> {
    entries: HashMap<u32, Entry<T>>,
    /// (due, insertion order, id): timers due at the same time fire in the
    /// order they were scheduled.
    order: BTreeSet<(Instant, u64, u32)>,
    next_id: u32,
    next_seq: u64,
}

impl<T: Clone> TimerQueue<T> {
    pub fn new() -> Self {
        TimerQueue {
            entries: HashMap::new(),
            order: BTreeSet::new(),
            next_id: 1,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Schedules a timer; returns its id (never 0).
    pub fn insert(&mut self, due: Instant, every: Option<Duration>, payload: T) -> u32 {
        let id = self.free_id();
        let seq = self.bump_seq();
        self.order.insert((due, seq, id));
        self.entries.insert(
            id,
            Entry {
                due,
                seq,
                every,
                payload,
            },
        );
        id
    }

    /// Cancels a timer, returning its payload; `None` if there was none.
    pub fn take(&mut self, id: u32) -> Option<T> {
        let entry = self.entries.remove(&id)?;
        self.order.remove(&(entry.due, entry.seq, id));
        Some(entry.payload)
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.order.first().map(|(due, _, _)| *due)
    }

    /// Takes the earliest timer due at `now`. An interval is rescheduled
    /// (from `now`, so a stalled loop does not fire a burst) before its
    /// payload is returned, so the callback may cancel it.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let &(due, seq, id) = self.order.first()?;
        if due > now {
            return None;
        }
        self.order.remove(&(due, seq, id));
        let every = self.entries.get(&id)?.every;
        match every {
            None => self.entries.remove(&id).map(|entry| entry.payload),
            Some(every) => {
                let next_seq = self.bump_seq();
                let entry = self.entries.get_mut(&id)?;
                entry.due = now + every;
                entry.seq = next_seq;
                self.order.insert((entry.due, next_seq, id));
                Some(entry.payload.clone())
            }
        }
    }

    /// Removes every timer, returning the payloads (to drop them in place).
    pub fn clear(&mut self) -> Vec<T> {
        self.order.clear();
        self.entries.drain().map(|(_, e)| e.payload).collect()
    }

    fn free_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.entries.contains_key(&id) {
                return id;
            }
        }
    }

    fn bump_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_due_then_insertion_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(t0 + Duration::from_millis(20), None, "b");
        q.insert(t0 + Duration::from_millis(10), None, "a");
        q.insert(t0 + Duration::from_millis(20), None, "c");
        assert_eq!(q.next_due(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(q.pop_due(t0), None);
        let later = t0 + Duration::from_millis(30);
        assert_eq!(q.pop_due(later), Some("a"));
        assert_eq!(q.pop_due(later), Some("b"));
        assert_eq!(q.pop_due(later), Some("c"));
        assert_eq!(q.pop_due(later), None);
        assert!(q.is_empty());
    }

    #[test]
    fn interval_reschedules_and_can_be_cancelled() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let id = q.insert(
            t0 + Duration::from_millis(10),
            Some(Duration::from_millis(10)),
            7,
        );
        assert_eq!(q.pop_due(t0 + Duration::from_millis(10)), Some(7));
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_millis(20)));
        assert_eq!(q.take(id), Some(7));
        assert_eq!(q.take(id), None);
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn ids_are_unique_and_nonzero() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(t0, None, ());
        let b = q.insert(t0, None, ());
        assert!(a != 0 && b != 0 && a != b);
    }
}
