//! Placeholder: the grafana simulator is being written.

use super::{SimRequest, SimResponse, Vendor};

pub struct Grafana {
    _credential: String,
}

impl Grafana {
    pub fn new(credential: &str) -> Self {
        Grafana { _credential: credential.to_string() }
    }
}

impl Vendor for Grafana {
    fn kind(&self) -> &'static str {
        "grafana"
    }

    fn handle(&mut self, _req: &SimRequest) -> SimResponse {
        SimResponse::empty(501)
    }
}
