//! Per-team locks: a read-modify-write of one team excludes the next one through this
//! process, so two member changes cannot lose each other's write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::Backend;
use crate::canonical::CanonicalRequest;

impl Backend {
    pub(super) async fn lock_team(
        &self,
        req: &CanonicalRequest,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let id = req.team_id.as_ref()?;
        Some(self.locks.get(id).lock_owned().await)
    }
}

/// Per-team locks for read-modify-write; entries die with their last holder.
#[derive(Default)]
pub(super) struct TeamLocks {
    map: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
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
