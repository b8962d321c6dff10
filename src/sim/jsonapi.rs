//! Placeholder: the jsonapi simulator is being written.

use super::{SimRequest, SimResponse, Vendor};

pub struct JsonApi {
    _credential: String,
}

impl JsonApi {
    pub fn new(credential: &str) -> Self {
        JsonApi {
            _credential: credential.to_string(),
        }
    }
}

impl Vendor for JsonApi {
    fn kind(&self) -> &'static str {
        "jsonapi"
    }

    fn handle(&mut self, _req: &SimRequest) -> SimResponse {
        SimResponse::empty(501)
    }
}
