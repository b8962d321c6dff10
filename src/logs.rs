//! JSON log lines that cost little: one object a line, written off the request path.
//!
//! The shape is tracing-subscriber's flattened JSON (`timestamp`, `level`, the event's fields
//! with `message` first, `target`, and the current span's fields under `span` with its `name`),
//! but made more cheaply: a span's fields are rendered to JSON once, when recorded, and each
//! event copies them; tracing-subscriber's JSON formatter parses and re-serialises a span's
//! fields on every `record` and every event (three records and a line per request: most of a
//! request's logging cost, BENCHMARKS.md).
//!
//! Lines go to a bounded, lossy, non-blocking writer ([`non_blocking`]): a request never waits
//! on stderr; under a flood the writer drops lines rather than memory or latency, and counts
//! them ([`dropped_lines`], exported as `teamgate_log_lines_dropped_total`). Its thread writes
//! through a buffer that it flushes whenever it has nothing more to write, so lines arrive in
//! batches under load and at once when idle.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Lines the writer may hold before it drops new ones. The channel is allocated whole at
/// start (32 bytes a slot: 0.5 MB); its lines, ~300 bytes each, only while waiting.
const BUFFERED_LINES: usize = 16 * 1024;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// A bounded, lossy, non-blocking writer to stderr. Keep the guard until the process ends:
/// dropping it writes out what is buffered.
pub fn non_blocking() -> (NonBlocking, WorkerGuard) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("teamgate-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let _ = DROPPED.set(writer.error_counter());
    (writer, guard)
}

/// Log lines dropped so far because the writer was full (0 without the writer).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// The JSON lines layer, writing each line whole to `writer`.
pub struct JsonLines<W> {
    writer: W,
}

impl<W> JsonLines<W> {
    pub fn new(writer: W) -> JsonLines<W> {
        JsonLines { writer }
    }
}

/// A span's fields, each rendered as `"name":value` once, when recorded.
#[derive(Default)]
struct SpanFields(Vec<(&'static str, String)>);

impl SpanFields {
    fn set(&mut self, name: &'static str, rendered: String) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = rendered,
            None => self.0.push((name, rendered)),
        }
    }
}

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut out = String::new();
        json_debug(&mut out, value);
        self.set(field.name(), out);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let mut out = String::new();
        json_str(&mut out, value);
        self.set(field.name(), out);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.to_string());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let mut out = String::new();
        json_f64(&mut out, value);
        self.set(field.name(), out);
    }
}

/// Writes an event's fields straight into the line, `message` kept aside to go first.
struct EventFields<'a> {
    line: &'a mut String,
    message: &'a mut String,
}

impl EventFields<'_> {
    fn key(&mut self, name: &str) {
        self.line.push(',');
        json_str(self.line, name);
        self.line.push(':');
    }
}

impl Visit for EventFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            json_debug(self.message, value);
        } else {
            self.key(field.name());
            json_debug(self.line, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            json_str(self.message, value);
        } else {
            self.key(field.name());
            json_str(self.line, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        let _ = write!(self.line, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        json_f64(self.line, value);
    }
}

thread_local! {
    /// The line and message being built, reused: no allocation per line once warm.
    static BUFFERS: RefCell<(String, String, String)> = const {
        RefCell::new((String::new(), String::new(), String::new()))
    };
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        BUFFERS.with(|buffers| {
            // A log line written while one is being built (a field's Debug logging) is
            // dropped rather than panicking on the borrow.
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                return;
            };
            let (line, message, fields) = &mut *buffers;
            line.clear();
            message.clear();
            fields.clear();
            let meta = event.metadata();
            // The fields first, into `fields` (`message` aside), to place `message` first.
            event.record(&mut EventFields {
                line: fields,
                message,
            });
            line.push_str("{\"timestamp\":\"");
            timestamp(line, SystemTime::now());
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push('"');
            if !message.is_empty() {
                line.push_str(",\"message\":");
                line.push_str(message);
            }
            line.push_str(fields);
            line.push_str(",\"target\":");
            json_str(line, meta.target());
            if let Some(span) = ctx.event_span(event) {
                line.push_str(",\"span\":{");
                if let Some(recorded) = span.extensions().get::<SpanFields>() {
                    for (name, value) in &recorded.0 {
                        json_str(line, name);
                        line.push(':');
                        line.push_str(value);
                        line.push(',');
                    }
                }
                line.push_str("\"name\":");
                json_str(line, span.name());
                line.push('}');
            }
            line.push_str("}\n");
            let _ = self.writer.make_writer().write_all(line.as_bytes());
        });
    }
}

/// `value` as a JSON string (RFC 8259 escapes).
fn json_str(out: &mut String, value: &str) {
    out.push('"');
    let mut from = 0;
    for (at, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `at` is a character boundary.
        out.push_str(&value[from..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        from = at + 1;
    }
    out.push_str(&value[from..]);
    out.push('"');
}

/// A `Debug` value (tracing's `%display` fields arrive here too) as a JSON string.
fn json_debug(out: &mut String, value: &dyn std::fmt::Debug) {
    thread_local! {
        static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            scratch.clear();
            let _ = write!(scratch, "{value:?}");
            json_str(out, &scratch);
        }
        Err(_) => json_str(out, &format!("{value:?}")),
    });
}

fn json_f64(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

/// RFC 3339 UTC with microseconds, as tracing-subscriber writes it:
/// `2026-11-27T19:36:27.892184Z`.
fn timestamp(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since.subsec_micros()
    );
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    fn lines(captured: &Captured) -> Vec<serde_json::Value> {
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn a_line_carries_the_event_and_its_span_recorded_late_and_escaped() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                request_id = %"r-1",
                operation = tracing::field::Empty,
            );
            span.record("operation", "get_team");
            span.record("operation", "list_teams");
            span.in_scope(|| {
                tracing::warn!(status = 503u16, ok = false, detail = %"a \"quoted\"\nline ✓\u{1}\\", "Request failed");
            });
            tracing::info!(n = -3i64, ratio = 0.5f64, "outside");
        });
        let lines = lines(&captured);
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["message"], "Request failed");
        assert_eq!(first["status"], 503);
        assert_eq!(first["ok"], false);
        assert_eq!(first["detail"], "a \"quoted\"\nline ✓\u{1}\\");
        assert_eq!(first["span"]["request_id"], "r-1");
        assert_eq!(
            first["span"]["operation"], "list_teams",
            "the last record wins"
        );
        assert_eq!(first["span"]["name"], "request");
        assert!(first["target"].as_str().unwrap().contains("logs"));
        let keys: Vec<_> = first.as_object().unwrap().keys().cloned().collect();
        assert_eq!(&keys[..3], ["timestamp", "level", "message"]);
        assert_eq!(lines[1]["n"], -3);
        assert_eq!(lines[1]["ratio"], 0.5);
        assert!(lines[1].get("span").is_none());
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        // 2026-11-27T19:36:27.892184Z
        timestamp(
            &mut out,
            UNIX_EPOCH + Duration::from_micros(1_795_808_187_892_184),
        );
        assert_eq!(out, "2026-11-27T19:36:27.892184Z");
        for (days, date) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (-1, (1969, 12, 31)),
            (20_819, (2027, 1, 1)),
        ] {
            assert_eq!(civil_from_days(days), date, "day {days}");
        }
    }
}
