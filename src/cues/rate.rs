//! Per-stream rate limit of cue requests: a token bucket (IVS PutMetadata: 5 per second per
//! channel); the same bucket limits the shopper events each client sends (`http::events`).
//! Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// A token bucket holding up to `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Refill rate, tokens per second.
    per_second: f64,
    /// Capacity.
    burst: f64,
    /// Tokens now (fractional).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_second: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            per_second,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.take_many(1.0, now)
    }

    /// Takes `count` tokens at once (one per event of a batch), or says how long until that
    /// many are available; a count above the burst is never available.
    pub fn take_many(&mut self, count: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.updated = now;
        if self.tokens >= count {
            self.tokens -= count;
            Ok(())
        } else {
            let wait = (count - self.tokens) / self.per_second.max(f64::MIN_POSITIVE);
            Err(Duration::from_secs_f64(wait.min(3600.0)))
        }
    }

    /// Whether the bucket is full at `now` (an idle client's bucket can be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.burst
    }

    /// Gives back a token taken for a request that then failed (so errors do not count).
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_second_with_a_burst_of_five() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5.0, 5.0, t0);
        for _ in 0..5 {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket
            .take(t0)
            .expect_err("sixth in the same instant is refused");
        assert!(wait > Duration::from_millis(150) && wait <= Duration::from_millis(200));
        assert!(bucket.take(t0 + Duration::from_millis(199)).is_err());
        assert!(bucket.take(t0 + Duration::from_millis(400)).is_ok());
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
        bucket.refund();
        assert!(bucket.take(later).is_ok());
    }

    #[test]
    fn batches_take_one_token_per_event() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 250.0, t0);
        assert!(bucket.take_many(100.0, t0).is_ok());
        assert!(bucket.take_many(100.0, t0).is_ok());
        let wait = bucket.take_many(100.0, t0).expect_err("50 left");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(!bucket.is_full(t0 + Duration::from_secs(1)));
        assert!(bucket.take_many(100.0, t0 + wait).is_ok());
        assert!(
            bucket
                .take_many(251.0, t0 + Duration::from_secs(60))
                .is_err()
        );
        assert!(bucket.is_full(t0 + Duration::from_secs(60)));
    }
}
