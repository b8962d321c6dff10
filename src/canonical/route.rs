//! HTTP method + path + query → canonical operation (the routing table of DESIGN §1).
//!
//! Path segments are percent-decoded one by one, so an id such as `..%2Fx` stays one id; it
//! is encoded again, as one segment, when the mapping builds the vendor path.

use std::collections::BTreeMap;

use http::Method;

use super::{cursor, CanonicalRequest, Operation, PageRequest};
use crate::error::Error;

pub const LIMIT_DEFAULT: usize = 50;
pub const LIMIT_MAX: usize = 100;
const ID_MAX: usize = 256;

/// What a request path names.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Operation(CanonicalRequest),
    Backends,
}

/// Routes a request; the body is validated later, by the operation.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Result<Route, Error> {
    let segments = segments(path)?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (op, team_id, user_id) = match (method, segs.as_slice()) {
        (&Method::GET, ["v1", "backends"]) => return Ok(Route::Backends),
        (&Method::GET, ["v1", "teams"]) => (Operation::ListTeams, None, None),
        (&Method::POST, ["v1", "teams"]) => (Operation::CreateTeam, None, None),
        (&Method::GET, ["v1", "teams", id]) => (Operation::GetTeam, Some(*id), None),
        (&Method::PATCH, ["v1", "teams", id]) => (Operation::UpdateTeam, Some(*id), None),
        (&Method::DELETE, ["v1", "teams", id]) => (Operation::DeleteTeam, Some(*id), None),
        (&Method::GET, ["v1", "teams", id, "members"]) => (Operation::ListMembers, Some(*id), None),
        (&Method::POST, ["v1", "teams", id, "members"]) => (Operation::AddMember, Some(*id), None),
        (&Method::DELETE, ["v1", "teams", id, "members", user]) => {
            (Operation::RemoveMember, Some(*id), Some(*user))
        }
        (&Method::PATCH, ["v1", "teams", id, "members", user]) => {
            (Operation::UpdateMember, Some(*id), Some(*user))
        }
        (&Method::GET, ["v1", "users"]) => (Operation::ListUsers, None, None),
        (_, ["v1", "teams"] | ["v1", "teams", _] | ["v1", "teams", _, "members"])
        | (_, ["v1", "teams", _, "members", _] | ["v1", "users"] | ["v1", "backends"]) => {
            return Err(Error::invalid(format!(
                "method {method} is not allowed on {path}"
            )))
        }
        _ => return Err(Error::not_found(format!("no route for {path}"))),
    };
    let mut request = CanonicalRequest::new(op);
    request.team_id = team_id.map(path_id).transpose()?;
    request.user_id = user_id.map(path_id).transpose()?;
    parse_query(&mut request, query)?;
    Ok(Route::Operation(request))
}

fn segments(path: &str) -> Result<Vec<String>, Error> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| Error::invalid("the path is not valid UTF-8 once decoded"))
        })
        .collect()
}

/// A path id names nothing when it is empty, a dot segment or absurdly long: such a request
/// can never reach a resource on any backend, so it ends here.
fn path_id(raw: &str) -> Result<String, Error> {
    if raw.is_empty() || raw == "." || raw == ".." || raw.len() > ID_MAX {
        return Err(Error::not_found(format!("no resource with id {raw:?}")));
    }
    if raw.chars().any(char::is_control) {
        return Err(Error::invalid("ids must not contain control characters"));
    }
    Ok(raw.to_string())
}

fn parse_query(request: &mut CanonicalRequest, query: Option<&str>) -> Result<(), Error> {
    let allowed: &[&str] = match request.op {
        Operation::ListTeams => &["name", "q", "limit", "cursor", "include"],
        Operation::ListUsers => &["email", "q", "limit", "cursor", "include"],
        // Every operation that answers a resource can carry its vendor leftovers.
        Operation::DeleteTeam | Operation::RemoveMember => &[],
        _ => &["include"],
    };
    let mut params = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(key)?;
        let value = form_decode(value)?;
        if !allowed.contains(&key.as_str()) {
            return Err(Error::invalid(format!(
                "unknown query parameter `{key}` for {}",
                request.op.name()
            )));
        }
        if params.insert(key.clone(), value).is_some() {
            return Err(Error::invalid(format!(
                "query parameter `{key}` is repeated"
            )));
        }
    }
    if let Some(include) = params.remove("include") {
        for part in include.split(',').map(str::trim) {
            match part {
                "vendor" => request.include_vendor = true,
                _ => {
                    return Err(Error::invalid(format!(
                        "`include` accepts `vendor`, not `{part}`"
                    )))
                }
            }
        }
    }
    if request.op.is_list() {
        let limit = match params.remove("limit") {
            None => LIMIT_DEFAULT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=LIMIT_MAX).contains(&n) => n,
                _ => {
                    return Err(Error::invalid(format!(
                        "`limit` must be an integer from 1 to {LIMIT_MAX}"
                    )))
                }
            },
        };
        // The cursor fixes the page size: a vendor page number is derived from it.
        request.page = Some(match params.remove("cursor") {
            Some(c) => cursor::decode(&c)?,
            None => PageRequest { limit, offset: 0 },
        });
    }
    for (key, value) in params {
        if value.chars().any(char::is_control) || value.len() > 256 {
            return Err(Error::invalid(format!(
                "query parameter `{key}` is not valid"
            )));
        }
        if !value.is_empty() {
            request.query.insert(key, value);
        }
    }
    Ok(())
}

fn form_decode(s: &str) -> Result<String, Error> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::invalid("the query is not valid UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str, query: Option<&str>) -> CanonicalRequest {
        match route(&method, path, query).unwrap() {
            Route::Operation(r) => r,
            other => panic!("not an operation: {other:?}"),
        }
    }

    #[test]
    fn every_operation_has_its_route() {
        assert_eq!(op(Method::GET, "/v1/teams", None).op, Operation::ListTeams);
        assert_eq!(
            op(Method::POST, "/v1/teams", None).op,
            Operation::CreateTeam
        );
        let r = op(Method::DELETE, "/v1/teams/7/members/9", None);
        assert_eq!(r.op, Operation::RemoveMember);
        assert_eq!(r.team_id.as_deref(), Some("7"));
        assert_eq!(r.user_id.as_deref(), Some("9"));
        assert_eq!(op(Method::GET, "/v1/users", None).op, Operation::ListUsers);
    }

    #[test]
    fn encoded_ids_stay_one_segment() {
        let r = op(Method::GET, "/v1/teams/..%2Fx", None);
        assert_eq!(r.team_id.as_deref(), Some("../x"));
        let r = op(Method::GET, "/v1/teams/1%3Fa%3Db", None);
        assert_eq!(r.team_id.as_deref(), Some("1?a=b"));
        let r = op(Method::GET, "/v1/teams/%C3%BC", None);
        assert_eq!(r.team_id.as_deref(), Some("ü"));
        assert!(route(&Method::GET, "/v1/teams/%2E%2E", None).is_err());
    }

    #[test]
    fn list_queries_are_checked() {
        let r = op(Method::GET, "/v1/teams", Some("limit=2&name=a+b"));
        assert_eq!(
            r.page,
            Some(PageRequest {
                limit: 2,
                offset: 0
            })
        );
        assert_eq!(r.query["name"], "a b");
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "colour=red",
            "cursor=zz",
            "q=a&q=b",
        ] {
            assert!(
                route(&Method::GET, "/v1/teams", Some(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(route(&Method::GET, "/v1/teams/1", Some("x=1")).is_err());
    }

    #[test]
    fn vendor_leftovers_are_included_only_on_request() {
        assert!(!op(Method::GET, "/v1/teams/1", None).include_vendor);
        assert!(op(Method::GET, "/v1/teams/1", Some("include=vendor")).include_vendor);
        let list = op(Method::GET, "/v1/teams", Some("include=vendor&limit=3"));
        assert!(list.include_vendor);
        assert!(list.query.is_empty(), "not a filter: {:?}", list.query);
        assert!(op(Method::POST, "/v1/teams", Some("include=vendor")).include_vendor);
        for bad in [
            "include=remote",
            "include=vendor,x",
            "include=vendor&include=vendor",
        ] {
            assert!(
                route(&Method::GET, "/v1/teams/1", Some(bad)).is_err(),
                "{bad}"
            );
        }
        // Nothing to include in a 204.
        assert!(route(&Method::DELETE, "/v1/teams/1", Some("include=vendor")).is_err());
    }

    #[test]
    fn unknown_paths_are_not_found_and_wrong_methods_invalid() {
        assert_eq!(
            route(&Method::GET, "/v2/teams", None).unwrap_err().code,
            crate::error::ErrorCode::NotFound
        );
        assert_eq!(
            route(&Method::PUT, "/v1/teams/1", None).unwrap_err().code,
            crate::error::ErrorCode::InvalidRequest
        );
    }
}
