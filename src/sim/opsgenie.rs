//! Placeholder: the opsgenie simulator is being written.

use super::{SimRequest, SimResponse, Vendor};

pub struct Opsgenie {
    _credential: String,
}

impl Opsgenie {
    pub fn new(credential: &str) -> Self {
        Opsgenie {
            _credential: credential.to_string(),
        }
    }
}

impl Vendor for Opsgenie {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    fn handle(&mut self, _req: &SimRequest) -> SimResponse {
        SimResponse::empty(501)
    }
}
