//! The streams that exist: the configured ones (`[[streams]]`) and the hosts' own (a host's
//! stream key names its stream, owned by the host). Shared by everything that asks "is this a
//! stream?" — ingest, chat rooms, shows, cues, the API — and updated at run time as hosts
//! create keys, so a host's stream works everywhere a configured one does.
//!
//! A host's stream stays once made (its key revoked, its recordings, chat and shows remain).

use std::collections::BTreeMap;
use std::sync::RwLock;

/// Who a stream belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A `[[streams]]` entry of the config: the operator's (admin, and hosts through shows).
    Configured,
    /// A host's stream key: that host's (username).
    Host(String),
}

/// Stream names and their owners.
#[derive(Debug, Default)]
pub struct StreamDirectory {
    streams: RwLock<BTreeMap<String, Owner>>,
}

impl StreamDirectory {
    /// A directory of the configured stream `names`.
    pub fn new(names: impl IntoIterator<Item = String>) -> StreamDirectory {
        StreamDirectory {
            streams: RwLock::new(names.into_iter().map(|n| (n, Owner::Configured)).collect()),
        }
    }

    /// Every stream name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Whether `name` is a stream.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// The owner of `name`; `None` when it is no stream.
    pub fn owner(&self, name: &str) -> Option<Owner> {
        self.read().get(name).cloned()
    }

    /// Records `name` as `host`'s stream. `false` (nothing changed) when it is a configured
    /// stream or another host's.
    pub fn add_hosted(&self, name: &str, host: &str) -> bool {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        match streams.get(name) {
            Some(Owner::Host(owner)) => owner == host,
            Some(Owner::Configured) => false,
            None => {
                streams.insert(name.to_string(), Owner::Host(host.to_string()));
                true
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Owner>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_streams_join_the_configured_ones_without_taking_them() {
        let directory = StreamDirectory::new(["demo".to_string()]);
        assert!(directory.add_hosted("alice-shop", "alice"));
        assert!(directory.add_hosted("alice-shop", "alice"), "idempotent");
        assert!(!directory.add_hosted("alice-shop", "bob"));
        assert!(!directory.add_hosted("demo", "bob"));
        assert_eq!(directory.names(), ["alice-shop", "demo"]);
        assert_eq!(directory.owner("demo"), Some(Owner::Configured));
        assert_eq!(
            directory.owner("alice-shop"),
            Some(Owner::Host("alice".into()))
        );
        assert_eq!(directory.owner("nope"), None);
        assert!(directory.contains("alice-shop") && !directory.contains("nope"));
    }
}
