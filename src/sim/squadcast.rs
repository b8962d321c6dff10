//! Placeholder: the squadcast simulator is being written.

use super::{SimRequest, SimResponse, Vendor};

pub struct Squadcast {
    _credential: String,
}

impl Squadcast {
    pub fn new(credential: &str) -> Self {
        Squadcast {
            _credential: credential.to_string(),
        }
    }
}

impl Vendor for Squadcast {
    fn kind(&self) -> &'static str {
        "squadcast"
    }

    fn handle(&mut self, _req: &SimRequest) -> SimResponse {
        SimResponse::empty(501)
    }
}
