//! The raw form of a mapping file, as serde reads it (first phase of loading).
//!
//! Unknown keys are refused (`deny_unknown_fields`), and every value that is compiled later
//! keeps its span, so that `teamgate check` can name the line of each problem. The meaning of
//! each key is documented in `mappings/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// Which vendor API this file speaks (informational, shown by `/v1/backends`).
    pub vendor: Spanned<String>,
    #[serde(default)]
    pub about: Option<String>,
    #[serde(default)]
    pub auth: AuthFile,
    #[serde(default)]
    pub request: RequestFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub errors: ErrorsFile,
    pub team: Spanned<TeamFile>,
    #[serde(default)]
    pub member: Option<Spanned<MemberFile>>,
    #[serde(default)]
    pub user: Option<Spanned<UserFile>>,
    /// Where people's details come from when the vendor's members carry only ids.
    #[serde(default)]
    pub people: Option<Spanned<PeopleFile>>,
    #[serde(default)]
    pub operations: BTreeMap<String, Spanned<OperationFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// Header name → template (`{credential}` allowed).
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Query parameter name → template (`{credential}` allowed).
    #[serde(default)]
    pub query: BTreeMap<String, Spanned<String>>,
    /// A short-lived access token fetched with the credential, cached, and used as `{token}`.
    pub token: Option<Spanned<TokenFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub query: BTreeMap<String, Spanned<String>>,
    pub body: Option<Spanned<toml::Value>>,
    /// Where the token is in the answer.
    pub token: Spanned<String>,
    /// Unix seconds when it expires; with `issued_at`, only their difference is used, so the
    /// vendor's clock need not agree with ours.
    pub expires_at: Option<Spanned<String>>,
    pub issued_at: Option<Spanned<String>>,
    /// Seconds it lives, when the vendor says that instead.
    pub expires_in: Option<Spanned<String>>,
    /// Refresh this long before it expires (default 60).
    pub refresh_before_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    pub content_type: Option<Spanned<String>>,
    /// `"with_body"` (default) or `"always"`.
    pub send_content_type: Option<Spanned<String>>,
    pub accept: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub name_max: Option<Spanned<i64>>,
    pub description_max: Option<Spanned<i64>>,
    pub page_size_max: Option<Spanned<i64>>,
    /// A regular expression team ids must match; other ids are `not_found` before any call.
    pub team_id_pattern: Option<Spanned<String>>,
    /// The vendor's documented request limits (the fleet's vendor budget, `[fleet]`).
    pub requests_per_second: Option<Spanned<i64>>,
    pub requests_per_minute: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsFile {
    /// Where the vendor's error message is in an error body.
    pub message: Option<Spanned<String>>,
    /// Where the vendor's error code is in an error body.
    pub code: Option<Spanned<String>>,
    /// A body with this value is an error whatever the HTTP status (unless its code is in
    /// `ok_codes`).
    pub present: Option<Spanned<String>>,
    #[serde(default)]
    pub ok_codes: Vec<String>,
    /// The header that tells how long to wait after a 429 (default `retry-after`).
    pub retry_after_header: Option<Spanned<String>>,
    #[serde(default)]
    pub rules: Vec<Spanned<ErrorRuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRuleFile {
    /// One status or several.
    pub status: Option<StatusFile>,
    /// The vendor's error code must equal this (or one of these).
    pub vendor_code: Option<VendorCodes>,
    /// The vendor's message must contain this (case-insensitive): a last resort.
    pub message_contains: Option<String>,
    /// Only for these canonical operations.
    pub operations: Option<Vec<String>>,
    /// The canonical code, or `already_done` (the operation's effect already holds: success).
    pub code: Spanned<String>,
}

/// `vendor_code`: one code or a list, each a string or an integer (many vendors number their
/// codes). Integers are kept as their decimal text, which is how a numeric code in an answer
/// is compared. Anything else is refused in words that say what is expected.
#[derive(Debug)]
pub struct VendorCodes(pub Vec<String>);

const VENDOR_CODE_EXPECTED: &str = "a vendor error code: a string or an integer \
    (`vendor_code = \"InvalidParameter\"` or `vendor_code = 2001`), or a list of them \
    (`vendor_code = [\"Unauthorized\", 4010]`)";

impl<'de> Deserialize<'de> for VendorCodes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Codes;

        impl<'de> serde::de::Visitor<'de> for Codes {
            type Value = VendorCodes;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(VENDOR_CODE_EXPECTED)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VendorCodes, E> {
                Ok(VendorCodes(vec![v.to_string()]))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<VendorCodes, E> {
                Ok(VendorCodes(vec![v.to_string()]))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<VendorCodes, E> {
                Ok(VendorCodes(vec![v.to_string()]))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<VendorCodes, A::Error> {
                let mut codes = Vec::new();
                // Each element through this same visitor: a string or an integer, not a list.
                while let Some(one) = seq.next_element::<OneCode>()? {
                    codes.push(one.0);
                }
                Ok(VendorCodes(codes))
            }
        }

        deserializer.deserialize_any(Codes)
    }
}

/// One element of a `vendor_code` list.
struct OneCode(String);

impl<'de> Deserialize<'de> for OneCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Code;

        impl serde::de::Visitor<'_> for Code {
            type Value = OneCode;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(VENDOR_CODE_EXPECTED)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneCode, E> {
                Ok(OneCode(v.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OneCode, E> {
                Ok(OneCode(v.to_string()))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<OneCode, E> {
                Ok(OneCode(v.to_string()))
            }
        }

        deserializer.deserialize_any(Code)
    }
}

/// `status`: one HTTP status or a list. Read by hand (end of file) so that a wrong value is
/// explained, not reported as "did not match any variant".
#[derive(Debug)]
pub enum StatusFile {
    One(u16),
    Many(Vec<u16>),
}

/// A canonical field: a JSONPath, or a table with a conversion. Read by hand (end of file),
/// like [`StatusFile`].
#[derive(Debug)]
pub enum FieldFile {
    Path(String),
    Full(FieldTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTable {
    pub path: String,
    /// Time fields: `rfc3339` (default) or `unix` (seconds).
    pub format: Option<String>,
    /// Role fields: canonical value → vendor value.
    pub values: Option<BTreeMap<String, toml::Value>>,
    /// Count the elements of the array at `path`.
    #[serde(default)]
    pub count: bool,
    /// Role fields: what a vendor role listed nowhere in `values` reads as: `"member"`
    /// (default), `"admin"`, or `"refuse"` (the answer is an upstream error naming the role).
    pub unknown: Option<String>,
    /// Team fields: the backend shows it but no create or update writes it; writing it
    /// answers 400.
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamFile {
    pub id: Spanned<FieldFile>,
    pub name: Spanned<FieldFile>,
    pub description: Option<Spanned<FieldFile>>,
    pub email: Option<Spanned<FieldFile>>,
    pub parent_id: Option<Spanned<FieldFile>>,
    pub member_count: Option<Spanned<FieldFile>>,
    /// The members inline in the team object; each is read with `[member]`.
    pub members: Option<Spanned<FieldFile>>,
    pub created_at: Option<Spanned<FieldFile>>,
    pub updated_at: Option<Spanned<FieldFile>>,
    /// A team object for which this is present (not null, not false) is gone for canonical
    /// callers (soft delete): `not_found`, hidden from lists.
    pub hidden_if: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFile {
    pub user_id: Spanned<FieldFile>,
    pub email: Option<Spanned<FieldFile>>,
    pub username: Option<Spanned<FieldFile>>,
    pub role: Option<Spanned<FieldFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    pub id: Spanned<FieldFile>,
    pub email: Option<Spanned<FieldFile>>,
    pub username: Option<Spanned<FieldFile>>,
    pub name: Option<Spanned<FieldFile>>,
}

/// A people lookup: steps that answer the details (email, username) of the members whose
/// vendor objects lack them, for all of an answer's members at once (`$.member_ids`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleFile {
    /// Where the people are in the step answers.
    pub items: Spanned<String>,
    /// The member's user id in a person object (what `[member] user_id` reads).
    pub user_id: Spanned<FieldFile>,
    pub email: Option<Spanned<FieldFile>>,
    pub username: Option<Spanned<FieldFile>>,
    /// At most this many ids per lookup (more make several lookups).
    pub batch_max: Option<Spanned<i64>>,
    #[serde(default)]
    pub steps: Vec<Spanned<StepFile>>,
    #[serde(default)]
    pub errors: Vec<Spanned<ErrorRuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFile {
    /// Run this canonical operation first (read-modify-write); its answer is `$.current`,
    /// and `$.merged` is the input merged into it.
    pub read: Option<Spanned<String>>,
    /// `"checked"`: read the member list first (add of a present member, remove or update of
    /// an absent one, answer without a write).
    /// `"member_set"`: the vendor only replaces the whole member list. teamgate reads the
    /// members (`list_members`), changes the set, and the steps write it (`$.member_ids`).
    pub style: Option<Spanned<String>>,
    /// Resolve `email` to `user_id` with this operation (`list_users`).
    pub resolve_user: Option<Spanned<String>>,
    #[serde(default)]
    pub steps: Vec<Spanned<StepFile>>,
    /// A follow-up operation whose answer is the answer (`get_team` after a create).
    pub then: Option<Spanned<String>>,
    /// With `then = "get_team"`: where the team id is.
    pub id: Option<Spanned<String>>,
    /// Where the vendor team object is in the answer.
    pub team: Option<Spanned<String>>,
    /// Where the list items are.
    pub items: Option<Spanned<String>>,
    /// `"pages"` (the vendor pages: `$.page.number`, `$.page.size`) or `"all"` (the vendor
    /// answers the whole list; teamgate pages it).
    pub paging: Option<Spanned<String>>,
    /// With `pages`: the total number of items, or whether another page exists.
    pub total: Option<Spanned<String>>,
    pub has_more: Option<Spanned<String>>,
    /// Team fields read from the operation's context rather than the team object (for
    /// example `member_count` from a members step): canonical field → expression.
    #[serde(default)]
    pub fields: BTreeMap<String, Spanned<FieldFile>>,
    #[serde(default)]
    pub errors: Vec<Spanned<ErrorRuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    pub name: Option<String>,
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub query: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub body: Option<Spanned<toml::Value>>,
    /// Run the step only when this is present.
    pub when: Option<Spanned<String>>,
    /// Skip the step when this is present.
    pub unless: Option<Spanned<String>>,
    /// After the step, each of these must be present, else `not_found`.
    #[serde(default)]
    pub require: Vec<Spanned<String>>,
    /// After the step, the team object here must exist and not be hidden, else `not_found`.
    pub visible_team: Option<Spanned<String>>,
    /// Call the step once per page until the list is whole (an inner list: a team's members).
    pub pages: Option<Spanned<StepPagesFile>>,
}

/// `pages = { size = 100, items = "$.steps.members.body.members", has_more = "...",
/// max_items = 10000 }` on a step: the step is sent with `$.page.number|size|offset` for page
/// after page, and its answer holds every page's items at `items`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepPagesFile {
    /// Items asked for per call (the vendor's maximum page size is the usual choice).
    pub size: Spanned<i64>,
    /// Where a page's items are: a plain path to an array in this step's answer.
    pub items: Spanned<String>,
    /// Whether another page exists; or `total`, the number of items; with neither, a page
    /// shorter than `size` is the last.
    pub has_more: Option<Spanned<String>>,
    pub total: Option<Spanned<String>>,
    /// More items than this is an error (never a silent cut).
    pub max_items: Spanned<i64>,
}

const STATUS_EXPECTED: &str = "an HTTP status from 100 to 599, one number or a list \
    (`status = 404` or `status = [400, 422]`)";

impl<'de> Deserialize<'de> for StatusFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Status;

        impl<'de> serde::de::Visitor<'de> for Status {
            type Value = StatusFile;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(STATUS_EXPECTED)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusFile, E> {
                http_status(v, &self).map(StatusFile::One)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusFile, E> {
                http_status(i64::try_from(v).unwrap_or(i64::MAX), &self).map(StatusFile::One)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StatusFile, A::Error> {
                let mut statuses = Vec::new();
                while let Some(one) = seq.next_element::<OneStatus>()? {
                    statuses.push(one.0);
                }
                // An empty list would make a rule that matches on nothing said about the status,
                // which is not what anyone writing `status = []` meant.
                if statuses.is_empty() {
                    return Err(serde::de::Error::invalid_length(0, &self));
                }
                Ok(StatusFile::Many(statuses))
            }
        }

        deserializer.deserialize_any(Status)
    }
}

/// One element of a `status` list: a number, not a nested list.
struct OneStatus(u16);

impl<'de> Deserialize<'de> for OneStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Status;

        impl serde::de::Visitor<'_> for Status {
            type Value = OneStatus;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(STATUS_EXPECTED)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OneStatus, E> {
                http_status(v, &self).map(OneStatus)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<OneStatus, E> {
                http_status(i64::try_from(v).unwrap_or(i64::MAX), &self).map(OneStatus)
            }
        }

        deserializer.deserialize_any(Status)
    }
}

fn http_status<E: serde::de::Error>(v: i64, expected: &dyn serde::de::Expected) -> Result<u16, E> {
    match u16::try_from(v) {
        Ok(status) if (100..=599).contains(&status) => Ok(status),
        _ => Err(E::invalid_value(serde::de::Unexpected::Signed(v), expected)),
    }
}

const FIELD_EXPECTED: &str = "a JSONPath in quotes (`name = \"$.name\"`) or a table with a `path` \
    (`created_at = { path = \"$.created\", format = \"unix\" }`)";

impl<'de> Deserialize<'de> for FieldFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Field;

        impl<'de> serde::de::Visitor<'de> for Field {
            type Value = FieldFile;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(FIELD_EXPECTED)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FieldFile, E> {
                Ok(FieldFile::Path(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FieldFile, A::Error> {
                // The table's own derive reports an unknown key or a missing `path` in its
                // precise words, with the span of the key at fault.
                FieldTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(FieldFile::Full)
            }
        }

        deserializer.deserialize_any(Field)
    }
}
