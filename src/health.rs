//! What the process says about itself: alive (`/healthz`), and ready to take traffic
//! (`/readyz`: a configuration is in service and the process is not draining), with the hash
//! of the configuration in service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub struct Health {
    draining: AtomicBool,
    config_hash: ArcSwap<String>,
}

impl Health {
    pub fn new(config_hash: String) -> Health {
        Health {
            draining: AtomicBool::new(false),
            config_hash: ArcSwap::from_pointee(config_hash),
        }
    }

    /// From now on `/readyz` answers 503, so load balancers stop sending new traffic.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn config_hash(&self) -> Arc<String> {
        self.config_hash.load_full()
    }

    /// A reload put another configuration in service.
    pub fn set_config_hash(&self, hash: String) {
        self.config_hash.store(Arc::new(hash));
    }
}
