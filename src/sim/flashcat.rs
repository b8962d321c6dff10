//! Placeholder: the flashcat simulator is being written.

use super::{SimRequest, SimResponse, Vendor};

pub struct Flashcat {
    _credential: String,
}

impl Flashcat {
    pub fn new(credential: &str) -> Self {
        Flashcat {
            _credential: credential.to_string(),
        }
    }
}

impl Vendor for Flashcat {
    fn kind(&self) -> &'static str {
        "flashcat"
    }

    fn handle(&mut self, _req: &SimRequest) -> SimResponse {
        SimResponse::empty(501)
    }
}
