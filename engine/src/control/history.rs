//! Call history: finished calls go from the engine's observer callback (which
//! must not block) through a queue to a writer task that stores them in
//! batches, one transaction each. [`HistoryWriter::flush`] waits until
//! everything queued so far is stored: shutdown calls it after the engine
//! has ended every call, so no record is lost on a clean stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::engine::{CallRecord, EngineEvent, EngineObserver};
use crate::storage::Storage;

/// Records per transaction, at most.
const BATCH: usize = 256;
/// Tries per batch before it is given up (and logged).
const ATTEMPTS: u32 = 5;

enum Message {
    Record(Box<CallRecord>),
    Flush(oneshot::Sender<()>),
}

pub struct HistoryWriter {
    tx: mpsc::UnboundedSender<Message>,
}

impl HistoryWriter {
    /// Starts the writer task.
    pub fn start(storage: Arc<dyn Storage>) -> Arc<HistoryWriter> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(storage, rx));
        Arc::new(HistoryWriter { tx })
    }

    /// Waits until every record queued before this call is stored (or
    /// given up on).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl EngineObserver for HistoryWriter {
    fn on_event(&self, event: &EngineEvent) {
        if let EngineEvent::CallEnded { record } = event {
            let _ = self.tx.send(Message::Record(record.clone()));
        }
    }
}

async fn write_loop(storage: Arc<dyn Storage>, mut rx: mpsc::UnboundedReceiver<Message>) {
    while let Some(first) = rx.recv().await {
        let mut records = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(record) => records.push(*record),
                Message::Flush(done) => flushes.push(done),
            }
            if records.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !records.is_empty() {
            store(storage.as_ref(), records).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn store(storage: &dyn Storage, records: Vec<CallRecord>) {
    let count = records.len();
    for attempt in 1..=ATTEMPTS {
        match storage.record_calls(records.clone()).await {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                warn!(error = %e, attempt, "storing call history failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => error!(error = %e, calls = count, "call history lost"),
        }
    }
}
