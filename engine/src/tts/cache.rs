//! Synthesize each prompt once: concurrent requests for the same text share
//! one synthesis, and results are kept (least recently used evicted first),
//! already resampled to the media rate.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use switchboard_media::AudioClip;
use tokio::sync::OnceCell;

use super::{TtsError, TtsProvider, Voice};

type Slot = Arc<OnceCell<AudioClip>>;

pub struct CachedTts {
    provider: Arc<dyn TtsProvider>,
    rate: u32,
    entries: Mutex<LruCache<(String, Voice), Slot>>,
}

impl CachedTts {
    /// Caches up to `capacity` prompts from `provider`, resampled to `rate`.
    pub fn new(provider: Arc<dyn TtsProvider>, capacity: usize, rate: u32) -> CachedTts {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        CachedTts {
            provider,
            rate,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The prompt for `text` in `voice`, synthesized at most once while cached.
    pub async fn speak(&self, text: &str, voice: &Voice) -> Result<AudioClip, TtsError> {
        let key = (text.to_string(), voice.clone());
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.get_or_insert(key.clone(), Slot::default).clone()
        };
        let result = slot
            .get_or_try_init(|| async {
                let clip = self.provider.synthesize(text, voice).await?;
                let rate = self.rate;
                // Resampling a whole prompt is CPU work: keep it off the
                // async workers.
                tokio::task::spawn_blocking(move || clip.resampled(rate))
                    .await
                    .map_err(|e| TtsError::Engine(format!("resampler panicked: {e}")))?
                    .map_err(|e| TtsError::Engine(format!("resampling: {e}")))
            })
            .await
            .cloned();
        if result.is_err() {
            // Do not remember failures: the next attempt tries again.
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.peek(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                entries.pop(&key);
            }
        }
        result
    }

    /// Prompts cached now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl TtsProvider for Counting {
        async fn synthesize(&self, text: &str, _voice: &Voice) -> Result<AudioClip, TtsError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if self.fail {
                return Err(TtsError::Engine("down".into()));
            }
            let samples: Vec<i16> = (0..1600).map(|i| ((i % 20) * 100) as i16).collect();
            let _ = text;
            Ok(AudioClip {
                rate: 16000,
                samples: samples.into(),
            })
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_synthesis() {
        let provider = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fail: false,
        });
        let tts = Arc::new(CachedTts::new(provider.clone(), 8, 8000));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let tts = tts.clone();
            tasks.push(tokio::spawn(async move {
                tts.speak("hello", &Voice::default()).await
            }));
        }
        for task in tasks {
            let clip = task.await.unwrap().unwrap();
            assert_eq!(clip.rate, 8000);
            assert!(
                (790..=810).contains(&clip.samples.len()),
                "{}",
                clip.samples.len()
            );
        }
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
        tts.speak("other", &Voice::default()).await.unwrap();
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
        assert_eq!(tts.len(), 2);
    }

    #[tokio::test]
    async fn failures_are_not_cached_and_capacity_is_bounded() {
        let provider = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fail: true,
        });
        let tts = CachedTts::new(provider.clone(), 2, 8000);
        assert!(tts.speak("a", &Voice::default()).await.is_err());
        assert!(tts.speak("a", &Voice::default()).await.is_err());
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
        assert!(tts.is_empty());

        let ok = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            fail: false,
        });
        let tts = CachedTts::new(ok, 2, 8000);
        for text in ["a", "b", "c"] {
            tts.speak(text, &Voice::default()).await.unwrap();
        }
        assert_eq!(tts.len(), 2);
    }
}
