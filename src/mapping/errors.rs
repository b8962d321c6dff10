//! Vendor errors → canonical errors, through the tables a mapping declares (DESIGN §2).
//!
//! [`ErrorFormat`] says where a vendor puts its error code and message, and which bodies are
//! errors whatever their HTTP status (errors inside a 200). [`ErrorRule`]s decide the canonical
//! code on the most reliable signal: status, then vendor code, then (last resort) message
//! text. A vendor error that no rule matches falls back by status class.

use serde_json::Value;

use super::expr::Expr;
use crate::canonical::Operation;
use crate::error::ErrorCode;

/// Where a vendor's error details are.
#[derive(Debug, Clone, Default)]
pub struct ErrorFormat {
    pub message: Option<Expr>,
    pub code: Option<Expr>,
    pub present: Option<Expr>,
    pub ok_codes: Vec<String>,
    pub retry_after_header: String,
}

/// What a vendor answered, as far as errors go.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorError {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    pub retry_after: Option<u64>,
}

impl ErrorFormat {
    /// The vendor error in an answer, or `None` when the answer is a success.
    pub fn detect(
        &self,
        status: u16,
        body: Option<&Value>,
        retry_after: Option<&str>,
    ) -> Option<VendorError> {
        let code = body
            .and_then(|b| self.code.as_ref()?.eval(b).ok().flatten())
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        let flagged = match (&self.present, body) {
            (Some(present), Some(b)) => {
                present.eval(b).ok().flatten().is_some()
                    && !code
                        .as_deref()
                        .is_some_and(|c| self.ok_codes.iter().any(|ok| ok == c))
            }
            _ => false,
        };
        if (200..300).contains(&status) && !flagged {
            return None;
        }
        let message = body
            .and_then(|b| self.message.as_ref()?.eval(b).ok().flatten())
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        Some(VendorError {
            status,
            code,
            message,
            retry_after: retry_after.and_then(|v| v.trim().parse().ok()),
        })
    }
}

/// What a matched rule means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Code(ErrorCode),
    /// The operation's effect already holds (adding a member who is already there).
    AlreadyDone,
}

#[derive(Debug, Clone)]
pub struct ErrorRule {
    pub statuses: Vec<u16>,
    /// Empty: any vendor code.
    pub vendor_codes: Vec<String>,
    /// Lower case.
    pub message_contains: Option<String>,
    pub operations: Option<Vec<Operation>>,
    pub outcome: Outcome,
}

impl ErrorRule {
    fn matches(&self, op: Operation, err: &VendorError) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&err.status))
            && (self.vendor_codes.is_empty()
                || err
                    .code
                    .as_ref()
                    .is_some_and(|c| self.vendor_codes.contains(c)))
            && self.message_contains.as_ref().is_none_or(|needle| {
                err.message
                    .as_deref()
                    .is_some_and(|m| m.to_lowercase().contains(needle))
            })
            && self.operations.as_ref().is_none_or(|ops| ops.contains(&op))
    }
}

/// The canonical outcome of a vendor error: the operation's own rules first, then the
/// mapping's, then the status class.
pub fn classify(
    op_rules: &[ErrorRule],
    rules: &[ErrorRule],
    op: Operation,
    err: &VendorError,
) -> Outcome {
    op_rules
        .iter()
        .chain(rules)
        .find(|rule| rule.matches(op, err))
        .map(|rule| rule.outcome)
        .unwrap_or_else(|| Outcome::Code(ErrorCode::from_upstream_status(err.status)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn format() -> ErrorFormat {
        ErrorFormat {
            message: Some(Expr::parse("$.error.message").unwrap()),
            code: Some(Expr::parse("$.error.code").unwrap()),
            present: Some(Expr::parse("$.error").unwrap()),
            ok_codes: vec!["OK".into(), "".into(), "0".into()],
            retry_after_header: "retry-after".into(),
        }
    }

    #[test]
    fn an_error_object_inside_a_200_is_an_error_unless_its_code_is_ok() {
        let f = format();
        let err = f
            .detect(
                200,
                Some(&json!({"error": {"code": "ResourceNotFound", "message": "m"}})),
                None,
            )
            .unwrap();
        assert_eq!(err.code.as_deref(), Some("ResourceNotFound"));
        assert!(f
            .detect(
                200,
                Some(&json!({"error": {"code": "OK"}, "data": {}})),
                None
            )
            .is_none());
        assert!(f.detect(200, Some(&json!({"data": {}})), None).is_none());
        assert!(f.detect(503, None, Some("7")).unwrap().retry_after == Some(7));
    }

    #[test]
    fn rules_match_on_status_code_and_message_in_that_order() {
        let rules = vec![
            ErrorRule {
                statuses: vec![400],
                vendor_codes: Vec::new(),
                message_contains: Some("already added".into()),
                operations: Some(vec![Operation::AddMember]),
                outcome: Outcome::AlreadyDone,
            },
            ErrorRule {
                statuses: vec![409],
                vendor_codes: Vec::new(),
                message_contains: None,
                operations: None,
                outcome: Outcome::Code(ErrorCode::NameTaken),
            },
        ];
        let e = |status, message: &str| VendorError {
            status,
            code: None,
            message: Some(message.into()),
            retry_after: None,
        };
        let add = Operation::AddMember;
        assert_eq!(
            classify(
                &[],
                &rules,
                add,
                &e(400, "User is already added to this team")
            ),
            Outcome::AlreadyDone
        );
        assert_eq!(
            classify(&[], &rules, Operation::CreateTeam, &e(400, "already added")),
            Outcome::Code(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            classify(&[], &rules, Operation::CreateTeam, &e(409, "whatever")),
            Outcome::Code(ErrorCode::NameTaken)
        );
        assert_eq!(
            classify(&[], &rules, add, &e(500, "")),
            Outcome::Code(ErrorCode::UpstreamError)
        );
    }
}
