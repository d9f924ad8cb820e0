//! A sliding-window cap on changes.

use std::collections::VecDeque;

use crate::Millis;

/// At most `max` events in any `window_ms`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    max: usize,
    window_ms: u64,
    events: VecDeque<Millis>,
}

impl RateLimit {
    /// A cap of `max` per `window_ms`.
    pub fn new(max: usize, window_ms: u64) -> RateLimit {
        RateLimit {
            max,
            window_ms,
            events: VecDeque::new(),
        }
    }

    /// `max` per minute.
    pub fn per_minute(max: usize) -> RateLimit {
        RateLimit::new(max, 60_000)
    }

    fn expire(&mut self, now: Millis) {
        while self
            .events
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= self.window_ms)
        {
            self.events.pop_front();
        }
    }

    /// Whether one more event fits now.
    pub fn allows(&mut self, now: Millis) -> bool {
        self.expire(now);
        self.events.len() < self.max
    }

    /// Records an event.
    pub fn record(&mut self, now: Millis) {
        self.expire(now);
        self.events.push_back(now);
    }

    /// Events in the current window.
    pub fn used(&mut self, now: Millis) -> usize {
        self.expire(now);
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_within_a_sliding_window() {
        let mut r = RateLimit::per_minute(3);
        for t in [0, 10_000, 20_000] {
            assert!(r.allows(t));
            r.record(t);
        }
        assert!(!r.allows(30_000), "a fourth within the minute");
        assert!(!r.allows(59_999));
        assert!(r.allows(60_000), "the first event left the window");
        r.record(60_000);
        assert!(!r.allows(60_001));
        assert_eq!(r.used(60_001), 3);
        assert_eq!(r.used(200_000), 0);
    }

    #[test]
    fn zero_allows_nothing() {
        let mut r = RateLimit::per_minute(0);
        assert!(!r.allows(0));
    }
}
