//! Live dialogs, found by our tag: in-dialog requests carry it in To.
//! Our tags are random and unique, so the tag alone is the key; Call-ID
//! and the remote tag are checked on lookup. Incoming calls are also
//! indexed by their INVITE's Call-ID and From tag, to spot merged requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::Request;

use crate::call::{Call, Origin};

#[derive(Default)]
pub(crate) struct Registry {
    calls: Mutex<Calls>,
}

#[derive(Default)]
struct Calls {
    by_tag: HashMap<String, Arc<Call>>,
    /// (Call-ID, From tag) of an incoming call's INVITE → our tag.
    by_origin: HashMap<(String, String), String>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Calls> {
        // A panic while holding this lock leaves the maps consistent (every
        // operation is a few inserts/removes), so poisoning is ignored.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert(&self, call: Arc<Call>) {
        let mut calls = self.lock();
        if let Some(origin) = &call.origin {
            calls.by_origin.insert(
                (origin.call_id.clone(), origin.from_tag.clone()),
                call.id.clone(),
            );
        }
        calls.by_tag.insert(call.id.clone(), call);
    }

    pub(crate) fn remove(&self, id: &str) {
        let mut calls = self.lock();
        let Some(call) = calls.by_tag.remove(id) else {
            return;
        };
        if let Some(origin) = &call.origin {
            let key = (origin.call_id.clone(), origin.from_tag.clone());
            if calls.by_origin.get(&key).is_some_and(|tag| tag == id) {
                calls.by_origin.remove(&key);
            }
        }
    }

    /// The dialog `request` (which has a To tag) belongs to.
    pub(crate) fn find(&self, to_tag: &str, request: &Request) -> Option<Arc<Call>> {
        let call = self.lock().by_tag.get(to_tag).cloned()?;
        let call_id = request.call_id_header().ok()?.value();
        let from_tag = request.from_header().ok()?.tag().ok()??;
        call.dialog
            .matches(call_id, from_tag.value())
            .then_some(call)
    }

    /// Whether a new INVITE is another copy of one we are already serving,
    /// arrived by another path (same Call-ID, From tag and CSeq; RFC 3261
    /// §8.2.2.2 answers it 482).
    pub(crate) fn is_merged(&self, invite: &Origin) -> bool {
        let calls = self.lock();
        calls
            .by_origin
            .get(&(invite.call_id.clone(), invite.from_tag.clone()))
            .and_then(|tag| calls.by_tag.get(tag))
            .and_then(|call| call.origin.as_ref())
            .is_some_and(|origin| origin.cseq == invite.cseq)
    }

    pub(crate) fn drain(&self) -> Vec<Arc<Call>> {
        let mut calls = self.lock();
        calls.by_origin.clear();
        calls.by_tag.drain().map(|(_, call)| call).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_tag.len()
    }
}
