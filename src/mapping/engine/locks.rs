//! Per-team locks: a read-modify-write of one team excludes the next one through this
//! process, so two member changes cannot lose each other's write. With `[fleet]` and Redis,
//! the lock is also taken fleet-wide (a lease: `crate::fleet::lease`), after the local one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::Backend;
use crate::canonical::CanonicalRequest;
use crate::fleet::lease::{Lease, Leases};

/// A team's lock held: in this process, and in the fleet when it could be taken there.
pub(super) struct TeamGuard {
    _fleet: Option<Lease>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl Backend {
    pub(super) async fn lock_team(&self, req: &CanonicalRequest) -> Option<TeamGuard> {
        let id = req.team_id.as_ref()?;
        let local = self.locks.get(id).lock_owned().await;
        let fleet = match self.locks.fleet.get() {
            Some((leases, backend)) => {
                let name = format!("team:{backend}:{id}");
                leases
                    .acquire(&name, crate::fleet::budget::deadline())
                    .await
            }
            None => None,
        };
        Some(TeamGuard {
            _fleet: fleet,
            _local: local,
        })
    }

    /// `[fleet]` with Redis: team locks are taken fleet-wide too, under `backend`'s name.
    pub fn share_locks(&self, leases: Leases, backend: &str) {
        let _ = self.locks.fleet.set((leases, backend.to_string()));
    }
}

/// Per-team locks for read-modify-write; entries die with their last holder.
#[derive(Default)]
pub(super) struct TeamLocks {
    map: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// `[fleet]`: the fleet's leases and this backend's name.
    fleet: OnceLock<(Leases, String)>,
}

impl TeamLocks {
    pub(super) fn get(&self, team: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().expect("team lock map");
        if let Some(lock) = map.get(team).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 {
            map.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(team.to_string(), Arc::downgrade(&lock));
        lock
    }
}
