//! Recordings as WAV files. The media tick only copies frames into a
//! bounded, preallocated queue ([`RecordSink::push`] never blocks and never
//! allocates); a writer thread per recording does the file I/O and
//! finalises the file when the recording stops or its leg or conference
//! closes. If the writer falls behind, frames are dropped and written as
//! silence so the timeline stays right.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::{MediaError, RecordingSummary, MAX_FRAME};

/// Frames queued before the writer is considered stalled (2 s).
const QUEUE_FRAMES: usize = 100;

type Done = oneshot::Receiver<Result<RecordingSummary, MediaError>>;

/// One frame on its way to the writer (interleaved when stereo).
struct Chunk {
    /// Frames dropped just before this one (written as silence).
    gap: u32,
    len: usize,
    samples: [i16; 2 * MAX_FRAME],
}

/// State shared by a recording's handle and its sink.
#[derive(Debug)]
struct RecShared {
    id: u64,
    stop: AtomicBool,
    dropped: AtomicU64,
    /// Per-participant tracks of a conference recording, as they start.
    tracks: Mutex<Vec<Done>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A recording in progress. [`Recording::stop`] ends it and reports the
/// file; dropping the handle lets it run until its leg or conference
/// closes.
#[derive(Debug)]
pub struct Recording {
    shared: Arc<RecShared>,
    done: Done,
}

impl Recording {
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Stops recording (from the next tick) and waits for the file (and any
    /// per-participant tracks) to be finalised.
    pub async fn stop(self) -> Result<RecordingSummary, MediaError> {
        self.shared.stop.store(true, Ordering::Release);
        let mut summary = self
            .done
            .await
            .map_err(|_| MediaError::Recording("the writer went away".into()))??;
        let tracks = std::mem::take(&mut *lock(&self.shared.tracks));
        for track in tracks {
            match track.await {
                Ok(Ok(t)) => summary.tracks.push(t.path),
                Ok(Err(e)) => tracing::warn!("a track failed: {e}"),
                Err(_) => tracing::warn!("a track writer went away"),
            }
        }
        Ok(summary)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tick's end of a recording.
pub(crate) struct RecordSink {
    tx: SyncSender<Chunk>,
    shared: Arc<RecShared>,
    stereo: bool,
    rate: u32,
    gap: u32,
}

impl std::fmt::Debug for RecordSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSink")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl RecordSink {
    /// Creates the file now (on the calling thread: a bad path is an error
    /// here) and starts its writer.
    pub(crate) fn create(
        path: &Path,
        rate: u32,
        stereo: bool,
    ) -> Result<(RecordSink, Recording), MediaError> {
        let spec = wav_spec(rate, stereo);
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|e| MediaError::Recording(format!("{}: {e}", path.display())))?;
        Ok(Self::start(path.to_path_buf(), rate, stereo, move || {
            Ok(writer)
        }))
    }

    /// Starts a recording whose file the writer thread creates (for tracks
    /// that begin on the tick; a failure ends only that track).
    fn create_later(path: PathBuf, rate: u32, stereo: bool) -> (RecordSink, Recording) {
        let spec = wav_spec(rate, stereo);
        let p = path.clone();
        Self::start(path, rate, stereo, move || {
            hound::WavWriter::create(&p, spec)
                .map_err(|e| MediaError::Recording(format!("{}: {e}", p.display())))
        })
    }

    fn start(
        path: PathBuf,
        rate: u32,
        stereo: bool,
        open: impl FnOnce() -> Result<Writer, MediaError> + Send + 'static,
    ) -> (RecordSink, Recording) {
        let (tx, rx) = sync_channel(QUEUE_FRAMES);
        let (done_tx, done) = oneshot::channel();
        let shared = Arc::new(RecShared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            tracks: Mutex::new(Vec::new()),
        });
        let channels = if stereo { 2 } else { 1 };
        let writer_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("recorder-{}", shared.id))
            .spawn(move || {
                let result =
                    open().and_then(|w| write_all(w, rx, &path, rate, channels, &writer_shared));
                let _ = done_tx.send(result);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a recording writer: {e}");
        }
        let sink = RecordSink {
            tx,
            shared: shared.clone(),
            stereo,
            rate,
            gap: 0,
        };
        (sink, Recording { shared, done })
    }

    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    pub(crate) fn is_stereo(&self) -> bool {
        self.stereo
    }

    /// Whether [`Recording::stop`] was called: drop the sink to finish.
    pub(crate) fn is_stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Starts a per-participant track that belongs to this recording (its
    /// summary lists it).
    pub(crate) fn start_track(&self, path: PathBuf, rate: u32) -> RecordSink {
        let (sink, recording) = RecordSink::create_later(path, rate, false);
        lock(&self.shared.tracks).push(recording.done);
        sink
    }

    /// Queues one frame: `left` alone (mono), or `left` and `right`
    /// interleaved (stereo; `right` missing is silence). Never blocks.
    pub(crate) fn push(&mut self, left: &[i16], right: Option<&[i16]>) {
        let n = left.len().min(MAX_FRAME);
        // Built on the stack, moved into the queue's preallocated slot.
        let mut chunk = Chunk {
            gap: self.gap,
            len: 0,
            samples: [0; 2 * MAX_FRAME],
        };
        if self.stereo {
            for (i, (pair, &l)) in chunk
                .samples
                .chunks_exact_mut(2)
                .zip(&left[..n])
                .enumerate()
            {
                pair[0] = l;
                pair[1] = right.and_then(|r| r.get(i).copied()).unwrap_or(0);
            }
            chunk.len = 2 * n;
        } else {
            chunk.samples[..n].copy_from_slice(&left[..n]);
            chunk.len = n;
        }
        match self.tx.try_send(chunk) {
            Ok(()) => self.gap = 0,
            Err(TrySendError::Full(_)) => {
                self.gap += 1;
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Queues silent frames (a track that starts late: aligns it).
    pub(crate) fn skip(&mut self, frames: u32) {
        self.gap = self.gap.saturating_add(frames);
    }
}

type Writer = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

fn wav_spec(rate: u32, stereo: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels: if stereo { 2 } else { 1 },
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

fn write_all(
    mut w: Writer,
    rx: Receiver<Chunk>,
    path: &Path,
    rate: u32,
    channels: usize,
    shared: &RecShared,
) -> Result<RecordingSummary, MediaError> {
    let err = |e: hound::Error| MediaError::Recording(format!("{}: {e}", path.display()));
    let frame = crate::frame_samples(rate) * channels;
    let mut written: u64 = 0;
    while let Ok(chunk) = rx.recv() {
        for _ in 0..(chunk.gap as usize * frame) {
            w.write_sample(0i16).map_err(err)?;
        }
        for &s in &chunk.samples[..chunk.len] {
            w.write_sample(s).map_err(err)?;
        }
        written += (chunk.gap as usize * frame + chunk.len) as u64;
    }
    w.finalize().map_err(err)?;
    let per_channel = written / channels as u64;
    Ok(RecordingSummary {
        path: path.to_path_buf(),
        duration_ms: per_channel * 1000 / u64::from(rate.max(1)),
        tracks: Vec::new(),
        dropped_frames: shared.dropped.load(Ordering::Relaxed),
    })
}

/// `<stem>-<suffix>.wav` next to `path`.
pub(crate) fn track_path(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("recording");
    path.with_file_name(format!("{stem}-{suffix}.wav"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_become_a_wav_file() {
        let dir = std::env::temp_dir().join(format!("sb-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mono.wav");
        let (mut sink, rec) = RecordSink::create(&path, 8000, false).unwrap();
        for k in 0..50 {
            sink.push(&[k as i16; 160], None);
        }
        assert!(!sink.is_stopped());
        let stop = tokio::spawn(rec.stop());
        // The owner sees the stop flag and drops the sink.
        while !sink.is_stopped() {
            tokio::task::yield_now().await;
        }
        drop(sink);
        let summary = stop.await.unwrap().unwrap();
        assert_eq!(summary.duration_ms, 1000);
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().sample_rate, 8000);
        let samples: Vec<i16> = r.into_samples().map(|s| s.unwrap()).collect();
        assert_eq!(samples.len(), 8000);
        assert_eq!(samples[160 * 7], 7);

        let path = dir.join("stereo.wav");
        let (mut sink, rec) = RecordSink::create(&path, 16_000, true).unwrap();
        sink.push(&[1; 320], Some(&[2; 320]));
        sink.skip(1);
        sink.push(&[3; 320], None);
        drop(sink);
        let summary = rec.stop().await.unwrap();
        assert_eq!(summary.duration_ms, 60);
        let samples: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .into_samples()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(&samples[..4], &[1, 2, 1, 2]);
        assert_eq!(samples[640], 0); // the skipped frame
        assert_eq!(&samples[1280..1282], &[3, 0]);
        assert!(RecordSink::create(&dir.join("no/such/dir/x.wav"), 8000, false).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
