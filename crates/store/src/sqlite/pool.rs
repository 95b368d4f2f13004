//! A fixed pool of read-only connections, used from blocking threads.

use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

use crate::{Result, StoreError};

pub struct ReadPool {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub fn new(connections: Vec<Connection>) -> Self {
        let permits = Arc::new(Semaphore::new(connections.len()));
        Self {
            idle: Arc::new(Mutex::new(connections)),
            permits,
        }
    }

    /// Runs `read` on an idle connection in a blocking thread, waiting for one if all are busy.
    pub async fn run<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("read pool closed".into()))?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let conn = idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .ok_or_else(|| {
                    StoreError::Internal("read pool is empty despite a permit".into())
                })?;
            // A panicking read must not leak its connection: put it back whatever happens.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&conn)));
            idle.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(conn);
            drop(permit);
            result.unwrap_or_else(|_| Err(StoreError::Internal("a read panicked".into())))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}
