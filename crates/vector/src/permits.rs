//! A counting semaphore for usearch's per-thread search contexts.
//!
//! usearch gives every concurrent add or search a context of its own (visited set, candidate
//! queues) out of a pool sized when capacity is reserved; a call that finds the pool empty fails
//! ("reserve capacity ahead of searches"). The server may call from any number of blocking
//! threads, so every call into usearch first takes a permit here and waits when all are out.

use std::sync::{Condvar, Mutex, PoisonError};

pub(crate) struct Permits {
    available: Mutex<usize>,
    returned: Condvar,
}

pub(crate) struct Permit<'a> {
    permits: &'a Permits,
}

impl Permits {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            available: Mutex::new(count),
            returned: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> Permit<'_> {
        // The counter stays consistent even if a holder panicked, so poisoning is ignored.
        let mut available = self
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *available == 0 {
            available = self
                .returned
                .wait(available)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *available -= 1;
        Permit { permits: self }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut available = self
            .permits
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *available += 1;
        self.permits.returned.notify_one();
    }
}
