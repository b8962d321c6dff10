//! Opaque list cursors: the position of the next page, whatever paging the vendor has.
//!
//! A cursor encodes the offset of the next item and the page size it was made for, so that a
//! vendor page number (`offset / size + 1`) can be derived again. It is base64url text: clients
//! must treat it as opaque, and a cursor that does not decode is an `invalid_request`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::PageRequest;
use crate::error::Error;

const PREFIX: &str = "tg1:";

/// Encodes the position of the page after `page` holding `returned` vendor items.
pub fn encode(page: PageRequest) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{}:{}", page.offset, page.limit))
}

/// Decodes a cursor made by [`encode`].
pub fn decode(cursor: &str) -> Result<PageRequest, Error> {
    let bad = || Error::invalid("`cursor` is not a cursor this service issued");
    if cursor.len() > 128 {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let rest = text.strip_prefix(PREFIX).ok_or_else(bad)?;
    let (offset, limit) = rest.split_once(':').ok_or_else(bad)?;
    let offset: usize = offset.parse().map_err(|_| bad())?;
    let limit: usize = limit.parse().map_err(|_| bad())?;
    if limit == 0 || offset > 1_000_000_000 {
        return Err(bad());
    }
    Ok(PageRequest { limit, offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let page = PageRequest {
            limit: 7,
            offset: 21,
        };
        assert_eq!(decode(&encode(page)).unwrap(), page);
    }

    #[test]
    fn garbage_is_invalid_request() {
        for bad in ["", "x", "dGcxOg", "dGcxOjE6MA", &"A".repeat(200)] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
