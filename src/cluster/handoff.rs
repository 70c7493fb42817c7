//! Stream continuity across nodes: the owner of a stream keeps what a successor needs to
//! continue its session (session id, numbering, timeline: opaque JSON here, written by the
//! ingest feature from `hls::handoff`) in `cuecast:stream:{name}:handoff`, with an expiry of
//! the reconnect grace plus the lease lifetime, rewritten whenever a segment opens or
//! completes. When the owner dies, the node that takes the lease next reads it (at
//! [`super::lease::Leases::acquire`]) and continues the session; edges hold viewers' requests
//! while a stream has a handoff but no owner ([`Leases::handoff_pending`]).
//!
//! [`HandoffPlan`] is the sans-IO part (when to write); [`Leases`] runs the scripts: write only
//! while the lease is ours (a node that lost its lease never overwrites its successor's), and
//! delete when the stream ends here (unless another node owns it now).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lease::{Leases, owner_key};

/// The Redis key of a stream's handoff.
pub fn handoff_key(stream: &str) -> String {
    format!("cuecast:stream:{stream}:handoff")
}

/// Sets KEYS[2] to ARGV[2] for ARGV[3] ms while KEYS[1] (the lease) holds ARGV[1]; 1 if set.
const WRITE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Deletes KEYS[2] unless KEYS[1] (the lease) holds another node than ARGV[1].
const CLEAR: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  return redis.call('DEL', KEYS[2])
end
return 0
";

/// How often the writer looks at the stream (a read of published positions, no lock).
const POLL: Duration = Duration::from_millis(100);

/// What the handoff writer reads from a live stream (implemented by ingest over an HLS
/// stream, so the cluster never depends on `hls`).
pub trait HandoffSource: Send + Sync + 'static {
    /// Changes whenever a segment opens or completes (cheap).
    fn key(&self) -> u64;
    /// The handoff now, as JSON.
    fn snapshot(&self) -> String;
    /// The stream ended here: the handoff is deleted and the writer stops.
    fn ended(&self) -> bool;
}

/// When to write (sans-IO): on a new key, and at least every third of the expiry so the key
/// lives while nothing changes (a publisher lost within the grace).
#[derive(Debug)]
pub struct HandoffPlan {
    ttl: Duration,
    written: Option<(u64, Instant)>,
}

impl HandoffPlan {
    /// A plan for keys expiring after `ttl`.
    pub fn new(ttl: Duration) -> HandoffPlan {
        HandoffPlan { ttl, written: None }
    }

    /// Whether to write at `now` for `key`.
    pub fn due(&self, key: u64, now: Instant) -> bool {
        match self.written {
            Some((written, at)) => written != key || now.duration_since(at) >= self.ttl / 3,
            None => true,
        }
    }

    /// A write of `key` at `now` succeeded.
    pub fn wrote(&mut self, key: u64, now: Instant) {
        self.written = Some((key, now));
    }

    /// A write failed (Redis down): try again at the next look.
    pub fn failed(&mut self) {
        self.written = None;
    }
}

impl Leases {
    /// The handoff of `stream`, if a previous owner left one that has not expired.
    pub async fn read_handoff(&self, stream: &str) -> Result<Option<String>, redis::RedisError> {
        let mut connection = self.cluster().connection();
        redis::cmd("GET")
            .arg(handoff_key(stream))
            .query_async(&mut connection)
            .await
    }

    /// Whether `stream` has a handoff waiting (its owner died or lost its publisher less than
    /// the grace ago): a viewer's request is worth holding until a node continues it. False
    /// when Redis does not answer.
    pub async fn handoff_pending(&self, stream: &str) -> bool {
        let mut connection = self.cluster().connection();
        let exists: Result<i64, _> = redis::cmd("EXISTS")
            .arg(handoff_key(stream))
            .query_async(&mut connection)
            .await;
        exists.is_ok_and(|n| n > 0)
    }

    async fn write_handoff(
        &self,
        stream: &str,
        json: &str,
        ttl: Duration,
    ) -> Result<bool, redis::RedisError> {
        let mut connection = self.cluster().connection();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: i64 = redis::cmd("EVAL")
            .arg(WRITE)
            .arg(2)
            .arg(owner_key(stream))
            .arg(handoff_key(stream))
            .arg(self.cluster().node_id())
            .arg(json)
            .arg(ttl_ms)
            .query_async(&mut connection)
            .await?;
        Ok(set == 1)
    }

    async fn clear_handoff(&self, stream: &str) {
        let mut connection = self.cluster().connection();
        let cleared: Result<i64, _> = redis::cmd("EVAL")
            .arg(CLEAR)
            .arg(2)
            .arg(owner_key(stream))
            .arg(handoff_key(stream))
            .arg(self.cluster().node_id())
            .query_async(&mut connection)
            .await;
        if let Err(err) = cleared {
            tracing::debug!(stream, error = %err, "cluster: cannot delete the stream's handoff; it expires");
        }
    }

    /// Keeps `stream`'s handoff in Redis from `source` until the stream ends here: written
    /// whenever a segment opens or completes (and refreshed), expiring `ttl` after the last
    /// write; deleted at the end.
    pub fn spawn_handoff_writer(
        self: &Arc<Self>,
        stream: &str,
        source: Arc<dyn HandoffSource>,
        ttl: Duration,
    ) {
        let leases = Arc::clone(self);
        let stream = stream.to_string();
        self.runtime().spawn(async move {
            let mut plan = HandoffPlan::new(ttl);
            let mut interval = tokio::time::interval(POLL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if source.ended() {
                    leases.clear_handoff(&stream).await;
                    break;
                }
                let key = source.key();
                let now = Instant::now();
                if !plan.due(key, now) {
                    continue;
                }
                match leases.write_handoff(&stream, &source.snapshot(), ttl).await {
                    Ok(true) => plan.wrote(key, now),
                    // Not ours (lost while Redis was away): nothing to write; look again later.
                    Ok(false) => plan.wrote(key, now),
                    Err(err) => {
                        tracing::debug!(stream, error = %err, "cluster: cannot write the stream's handoff");
                        plan.failed();
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_on_every_new_key_and_refreshed_within_the_expiry() {
        let ttl = Duration::from_secs(9);
        let t0 = Instant::now();
        let mut plan = HandoffPlan::new(ttl);
        assert!(plan.due(7, t0), "first look: write");
        plan.wrote(7, t0);
        assert!(!plan.due(7, t0 + Duration::from_secs(1)), "nothing new");
        assert!(plan.due(8, t0 + Duration::from_secs(1)), "a segment opened");
        assert!(
            plan.due(7, t0 + Duration::from_secs(3)),
            "refreshed every third of the expiry"
        );
        plan.failed();
        assert!(plan.due(7, t0), "a failed write is retried");
        assert_eq!(handoff_key("demo"), "cuecast:stream:demo:handoff");
    }
}
