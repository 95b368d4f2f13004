//! Per-caller rate limits: a token bucket per key (per public key and client address, per user,
//! per client address for logins), in memory on each replica. A replica limits what it serves;
//! N replicas behind a balancer allow up to N times the rate, which is the usual trade for not
//! putting a database write on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// `[limits]`: the rate and burst of each caller's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second; 0 turns limiting off.
    pub requests_per_second: f64,
    /// The bucket's size: requests allowed at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    pub const OFF: RateLimit = RateLimit {
        requests_per_second: 0.0,
        burst: 0,
    };

    pub fn is_off(self) -> bool {
        self.requests_per_second <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of one replica.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
    max_buckets: usize,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
            max_buckets: 100_000,
        }
    }

    /// Takes a token from `caller`'s bucket: `Ok`, or how long until one is there.
    pub fn check(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        if self.limit.is_off() {
            return Ok(());
        }
        let burst = f64::from(self.limit.burst.max(1));
        let rate = self.limit.requests_per_second;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= self.max_buckets && !buckets.contains_key(caller) {
            // Full buckets carry no state worth keeping: a new one starts full too.
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// The bound on requests in flight, shared by the HTTP and OTLP/gRPC servers of a replica.
#[derive(Clone)]
pub struct InFlight {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl InFlight {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
        }
    }

    /// A permit for one request, or `None` when the limit is reached (never waits).
    pub fn try_acquire(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

/// `Retry-After` is whole seconds; never 0 (that invites an immediate retry).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            requests_per_second: 2.0,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("key 1", start).is_ok());
        }
        let wait = limiter.check("key 1", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        // Another caller has its own bucket.
        assert!(limiter.check("key 2", start).is_ok());
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.check("key 1", later).is_ok());
        assert!(limiter.check("key 1", later).is_err());
    }

    #[test]
    fn in_flight_permits_are_refused_past_the_limit_and_come_back_when_dropped() {
        let in_flight = InFlight::new(2);
        let first = in_flight.try_acquire().expect("first");
        let _second = in_flight.try_acquire().expect("second");
        assert!(in_flight.try_acquire().is_none());
        drop(first);
        assert!(in_flight.try_acquire().is_some());
    }

    #[test]
    fn off_means_unlimited() {
        let limiter = RateLimiter::new(RateLimit::OFF);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.check("key", now).is_ok());
        }
    }
}
