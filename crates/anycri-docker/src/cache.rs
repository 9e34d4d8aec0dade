//! A small, bounded map with a lifetime per entry, for answers the shim may reuse instead of
//! asking Docker again on a hot path: a ContainerStatus's resolved `image_ref` per image ID,
//! whether an exited container was OOM-killed, and the full IDs of pause containers this
//! process made.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The most entries a cache holds; when full, expired entries go first, and a new entry is
/// dropped while the rest are live.
const CAPACITY: usize = 1024;

/// Entries keyed by string, each valid for `ttl` after it was stored.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub(crate) fn insert(&self, key: &str, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
        }
        if entries.len() < CAPACITY {
            entries.insert(key.to_owned(), (value, Instant::now()));
        }
    }

    pub(crate) fn remove(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let cache = TtlCache::new(Duration::from_millis(50));
        cache.insert("a", 1);
        assert_eq!(cache.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
        cache.insert("b", 2);
        cache.clear();
        assert_eq!(cache.get("b"), None);
    }
}
