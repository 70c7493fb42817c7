//! Connection limits shared by the ingest listeners: at most `max_total` connections, and at
//! most `max_per_ip` from one address (IPv6 addresses count per /64, the block one host is
//! usually given, so a single client cannot spread over its own addresses).
//!
//! Sans-IO: the listener asks [`ConnectionLimits::try_acquire`] with the peer's address when a
//! connection arrives and holds the returned [`ConnectionSlot`] for the connection's life; the
//! slot gives its place back when dropped. SRT decides at handshake, before the caller socket
//! exists, with [`ConnectionLimits::check`], and takes the slot when it accepts the caller.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use crate::setting::Invalid;

/// Why a connection was refused by the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitRefusal {
    /// `max_connections` connections are open.
    #[error("too many connections (max_connections = {0})")]
    Total(usize),
    /// `max_connections_per_ip` connections from this address are open.
    #[error("too many connections from this address (max_connections_per_ip = {0})")]
    PerIp(usize),
}

/// Counts of open connections, in total and per address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The limits and the connections holding a place under them.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

/// The address a peer is counted under: itself, or its /64 for IPv6 (IPv4-mapped IPv6
/// addresses count as the IPv4 address).
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

impl ConnectionLimits {
    /// Checks a listener's `max_connections` and `max_connections_per_ip` keys: at least one
    /// connection in total, and a per-address cap within 1..=the total.
    pub fn validate(max_total: usize, max_per_ip: usize) -> Result<(), Invalid> {
        if max_total == 0 {
            return Err(Invalid::new("max_connections", "must be at least 1"));
        }
        if !(1..=max_total).contains(&max_per_ip) {
            return Err(Invalid::new(
                "max_connections_per_ip",
                format!("must be within 1..=max_connections ({max_total})"),
            ));
        }
        Ok(())
    }

    /// Limits of `max_total` connections, `max_per_ip` per address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a connection from `ip` would be admitted now (taking nothing).
    pub fn check(&self, ip: IpAddr) -> Result<(), LimitRefusal> {
        let counts = self.lock();
        self.admits(&counts, counted_as(ip))
    }

    fn admits(&self, counts: &Counts, key: IpAddr) -> Result<(), LimitRefusal> {
        if counts.total >= self.max_total {
            return Err(LimitRefusal::Total(self.max_total));
        }
        if counts.per_ip.get(&key).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(LimitRefusal::PerIp(self.max_per_ip));
        }
        Ok(())
    }

    /// Takes a place for a connection from `ip`, or says which limit is reached.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, LimitRefusal> {
        let key = counted_as(ip);
        let mut counts = self.lock();
        self.admits(&counts, key)?;
        counts.total += 1;
        *counts.per_ip.entry(key).or_default() += 1;
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            key,
        })
    }

    /// Open connections: in total, and from `ip`.
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let counts = self.lock();
        let from = counts.per_ip.get(&counted_as(ip)).copied().unwrap_or(0);
        (counts.total, from)
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&key);
            }
        }
    }
}

/// A connection's place under the limits, given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    key: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.key);
    }
}

/// Logs refusals of one listener without a line per refused connection: the first refusal,
/// then at most one summary line per `every` with how many were refused meanwhile. Time is
/// passed in.
#[derive(Debug)]
pub struct RefusalLog {
    every: std::time::Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RefusalLog {
    /// At most one line per `every`.
    pub fn new(every: std::time::Duration) -> RefusalLog {
        RefusalLog {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Records a refusal at `now`; `Some(n)` when a line should be logged now, `n` being the
    /// refusals not logged since the last line (this one excluded).
    pub fn refused(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn per_ip_and_total_limits_refuse_and_slots_give_back() {
        let limits = ConnectionLimits::new(3, 2);
        let a1 = limits.try_acquire(ip("10.0.0.1")).expect("first");
        let _a2 = limits.try_acquire(ip("10.0.0.1")).expect("second");
        assert_eq!(
            limits.try_acquire(ip("10.0.0.1")).unwrap_err(),
            LimitRefusal::PerIp(2)
        );
        assert_eq!(limits.check(ip("10.0.0.1")), Err(LimitRefusal::PerIp(2)));
        let _b = limits.try_acquire(ip("10.0.0.2")).expect("other address");
        assert_eq!(
            limits.try_acquire(ip("10.0.0.3")).unwrap_err(),
            LimitRefusal::Total(3)
        );
        assert_eq!(limits.open(ip("10.0.0.1")), (3, 2));
        drop(a1);
        assert_eq!(limits.open(ip("10.0.0.1")), (2, 1));
        assert_eq!(limits.check(ip("10.0.0.3")), Ok(()));
        let _a3 = limits
            .try_acquire(ip("10.0.0.1"))
            .expect("a place came back");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limits = ConnectionLimits::new(100, 1);
        let _a = limits.try_acquire(ip("2001:db8:1:2::1")).expect("first");
        assert_eq!(
            limits.try_acquire(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            LimitRefusal::PerIp(1)
        );
        let _b = limits
            .try_acquire(ip("2001:db8:1:3::1"))
            .expect("another /64");
        let _c = limits.try_acquire(ip("192.0.2.7")).expect("v4");
        assert_eq!(
            limits.try_acquire(ip("::ffff:192.0.2.7")).unwrap_err(),
            LimitRefusal::PerIp(1)
        );
    }

    #[test]
    fn counts_are_forgotten_when_the_last_slot_goes() {
        let limits = ConnectionLimits::new(10, 10);
        let slots: Vec<_> = (0..5)
            .map(|i| {
                limits
                    .try_acquire(ip(&format!("10.1.0.{i}")))
                    .expect("slot")
            })
            .collect();
        drop(slots);
        assert_eq!(limits.open(ip("10.1.0.1")), (0, 0));
        assert!(limits.lock().per_ip.is_empty());
    }

    #[test]
    fn refusal_log_writes_one_line_per_period() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(1));
        assert_eq!(log.refused(t0), Some(0));
        for i in 1..=999 {
            assert_eq!(log.refused(t0 + Duration::from_micros(i)), None);
        }
        assert_eq!(log.refused(t0 + Duration::from_secs(1)), Some(999));
        assert_eq!(log.refused(t0 + Duration::from_millis(1500)), None);
    }
}
