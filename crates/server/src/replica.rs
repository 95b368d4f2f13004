//! What a replica keeps in memory, and how it catches up with the others. Several servers may run
//! on one database; each caches API keys (a key look-up per request would cost a database round
//! trip) and follows the store's change log to drop the cache when keys change anywhere.

use feedloop_store::Store;
use feedloop_store::coordination::ChangeTopic;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use crate::extract::KnownKey;

/// What a key hash resolved to.
#[derive(Debug, Clone)]
pub enum KeyState {
    Valid(KnownKey),
    Revoked,
    Unknown,
}

/// API keys by hash, valid or not (unknown keys are remembered too, so that a client with a bad
/// key cannot make every request a database read). Cleared whole when any key changes.
pub struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], KeyState>>,
    max_entries: usize,
}

impl KeyCache {
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<KeyState> {
        self.lock().get(hash).cloned()
    }

    pub fn put(&self, hash: [u8; 32], state: KeyState) {
        let mut entries = self.lock();
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(hash, state);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], KeyState>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Follows the change log until `stop` turns true, clearing `keys` whenever keys changed
/// (through this replica or another). Errors are logged and retried: a database that is away
/// for a while must not stop the follower.
pub async fn follow_changes(
    store: Arc<dyn Store>,
    keys: Arc<KeyCache>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = loop {
        match store.latest_change().await {
            Ok(seq) => break seq,
            Err(error) => {
                tracing::warn!(%error, "change follower cannot start yet");
                if wait(&mut stop, interval).await {
                    return;
                }
            }
        }
    };
    loop {
        if wait(&mut stop, interval).await {
            return;
        }
        match store.changes_since(last, 10_000).await {
            Ok(changes) => {
                if changes.iter().any(|c| c.topic == ChangeTopic::Keys) {
                    keys.clear();
                    tracing::debug!(
                        num_changes = changes.len(),
                        "keys changed; key cache cleared"
                    );
                }
                if let Some(change) = changes.last() {
                    last = change.seq;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the change log"),
        }
    }
}

/// Sleeps for `interval`; true if told to stop meanwhile.
pub(crate) async fn wait(stop: &mut watch::Receiver<bool>, interval: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(interval) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}
