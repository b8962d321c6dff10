//! Steps: a declared vendor call built from the context (path, query, headers, body, the
//! credential where the mapping's auth puts it), sent through the upstream client, and its
//! answer read into the context or turned into a canonical error by the mapping's tables.
//!
//! Each vendor call runs in a span of its own and carries the request's trace context as a
//! child `traceparent` (and the caller's `tracestate`).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use tower::ServiceExt;
use tracing::Instrument;

use super::lists::more_to_come;
use super::{bad_answer, convert_problem, object, Backend, Ctx, Flow};
use crate::call::TraceContext;
use crate::canonical::Operation;
use crate::error::{Error, ErrorCode, Origin, UpstreamDetail};
use crate::mapping::errors::{classify, Outcome, VendorError};
use crate::mapping::expr::Expr;
use crate::mapping::template::{encode_component, Escape, Secrets};
use crate::mapping::{OperationPlan, Step, StepPages};
use crate::metrics::UpstreamOutcome;
use crate::redact::redact;
use crate::upstream::{UpstreamError, UpstreamRequest, UpstreamResponse};

tokio::task_local! {
    /// The trace context of the request being run, for the vendor calls it makes.
    static TRACE: TraceContext;
}

/// Runs `work` with `trace` as the context its vendor calls continue.
pub async fn with_trace<F: std::future::Future>(trace: TraceContext, work: F) -> F::Output {
    TRACE.scope(trace, work).await
}

impl Backend {
    // ---- steps ---------------------------------------------------------------------------

    /// Runs the plan's steps; `caller` is the canonical operation the caller asked for, which
    /// labels the upstream metrics (a follow-up read counts for the create that needed it).
    pub(super) async fn run_steps(
        &self,
        plan: &OperationPlan,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Flow, Error> {
        for step in &plan.steps {
            if let Some(when) = &step.when {
                if present(when, ctx)? != Some(true) {
                    continue;
                }
            }
            if let Some(unless) = &step.unless {
                if present(unless, ctx)? == Some(true) {
                    continue;
                }
            }
            let flow = match &step.pages {
                None => self.exchange(plan, step, ctx, caller).await?,
                Some(pages) => self.exchange_pages(plan, step, pages, ctx, caller).await?,
            };
            if let Flow::AlreadyDone = flow {
                return Ok(Flow::AlreadyDone);
            }
            for required in &step.require {
                if required.eval(ctx).map_err(convert_problem)?.is_none() {
                    return Err(Error::not_found(format!(
                        "the backend has no such resource (step `{}` found nothing)",
                        step.name
                    ))
                    .from_origin(Origin::Vendor));
                }
            }
            if let Some(visible) = &step.visible_team {
                match visible.eval(ctx).map_err(convert_problem)? {
                    Some(team) if !self.is_hidden(&team) => {}
                    _ => {
                        return Err(
                            Error::not_found("the team does not exist").from_origin(Origin::Vendor)
                        )
                    }
                }
            }
        }
        Ok(Flow::Done)
    }

    /// Sends one step and reads its answer into `$.steps.<name>`, or turns it into the
    /// canonical error (or `already_done`) by the mapping's tables.
    async fn exchange(
        &self,
        plan: &OperationPlan,
        step: &Step,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Flow, Error> {
        let answer = self.call_step(step, ctx, caller).await?;
        let body = parse_body(&answer);
        let retry_after = answer
            .headers
            .get(self.mapping.error_format.retry_after_header.as_str())
            .and_then(|v| v.to_str().ok());
        let vendor_error = self.mapping.error_format.detect(
            answer.status,
            body.as_ref().and_then(|b| b.as_ref().ok()),
            retry_after,
        );
        match (vendor_error, body) {
            (Some(err), _) => {
                self.metrics
                    .upstream(&self.name, caller.name(), UpstreamOutcome::VendorError);
                match classify(&plan.errors, &self.mapping.error_rules, plan.op, &err) {
                    Outcome::AlreadyDone => Ok(Flow::AlreadyDone),
                    Outcome::Code(code) => {
                        let err = self.redacted(err);
                        Err(vendor_problem(code, err, &step.name))
                    }
                }
            }
            (None, Some(Err(()))) => {
                self.metrics
                    .upstream(&self.name, caller.name(), UpstreamOutcome::BadAnswer);
                Err(bad_answer(&format!(
                    "the answer to step `{}` (HTTP {}) is not valid JSON",
                    step.name, answer.status
                )))
            }
            (None, body) => {
                self.metrics
                    .upstream(&self.name, caller.name(), UpstreamOutcome::Ok);
                let body = body.and_then(Result::ok).unwrap_or(Value::Null);
                ctx["steps"][step.name.as_str()] =
                    object([("status", Value::from(answer.status)), ("body", body)]);
                Ok(Flow::Done)
            }
        }
    }

    /// Sends a paged step page after page (`$.page.number|size|offset`) until the vendor
    /// says the list is whole, and leaves the last answer in the context with every page's
    /// items at `items`. More than `max_items` is an error: a list is whole or not at all.
    async fn exchange_pages(
        &self,
        plan: &OperationPlan,
        step: &Step,
        pages: &StepPages,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Flow, Error> {
        // A list operation's own `$.page` is the caller's window: put it back afterwards.
        let outer_page = ctx.as_object_mut().and_then(|c| c.remove("page"));
        let result = self.gather_pages(plan, step, pages, ctx, caller).await;
        if let Some(map) = ctx.as_object_mut() {
            match outer_page {
                Some(page) => map.insert("page".into(), page),
                None => map.remove("page"),
            };
        }
        result
    }

    async fn gather_pages(
        &self,
        plan: &OperationPlan,
        step: &Step,
        pages: &StepPages,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Flow, Error> {
        let size = pages.size;
        let mut gathered: Vec<Value> = Vec::new();
        // Every page but the last is full, so the maximum is reached within this many.
        let most_pages = pages.max_items.div_ceil(size) + 1;
        for number in 1..=most_pages {
            let offset = (number - 1) * size;
            ctx["page"] = object([
                ("number", Value::from(number)),
                ("size", Value::from(size)),
                ("offset", Value::from(offset)),
            ]);
            if let Flow::AlreadyDone = self.exchange(plan, step, ctx, caller).await? {
                return Ok(Flow::AlreadyDone);
            }
            let page = match node_mut(ctx, &pages.items).map(Value::take) {
                Some(Value::Array(items)) => items,
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(bad_answer(&format!(
                    "the answer to step `{}` has no list where the mapping's `pages.items` says",
                    step.name
                )))
                }
            };
            let count = page.len();
            gathered.extend(page);
            // With neither a more-flag nor a total, a short page is the last.
            let more = more_to_come(
                pages.has_more.as_ref(),
                pages.total.as_ref(),
                ctx,
                gathered.len(),
            )
            .unwrap_or(count == size);
            if gathered.len() > pages.max_items {
                return Err(too_many(step, pages.max_items));
            }
            // An empty page ends the list whatever the vendor claims: no endless walk.
            if !more || count == 0 {
                if let Some(slot) = node_mut(ctx, &pages.items) {
                    *slot = Value::Array(gathered);
                }
                return Ok(Flow::Done);
            }
        }
        Err(too_many(step, pages.max_items))
    }

    /// `base_url` + an already encoded path + the query, each key and value encoded as one
    /// component (so no value can add a parameter).
    pub(super) fn vendor_url(&self, path: &str, pairs: &[(&str, String)]) -> String {
        let mut url = format!("{}{}", self.base_url, path);
        for (i, (key, value)) in pairs.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_component(key));
            url.push('=');
            url.push_str(&encode_component(value));
        }
        url
    }

    /// Sends one step. With two-step auth, a 401 means the access token was refused
    /// (expired or revoked early): a new one is fetched once and the step sent again. The
    /// vendor did not act on a request it refused, so this cannot duplicate a write.
    pub(super) async fn call_step(
        &self,
        step: &Step,
        ctx: &Ctx,
        caller: Operation,
    ) -> Result<UpstreamResponse, Error> {
        let Some(plan) = &self.mapping.auth.token else {
            return self.send(caller, self.build(step, ctx, "")?).await;
        };
        let token = self.access_token(plan, None, caller).await?;
        let answer = self
            .send(caller, self.build(step, ctx, token.expose())?)
            .await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        self.metrics
            .upstream(&self.name, caller.name(), UpstreamOutcome::VendorError);
        tracing::info!(backend = %self.name, "Access token refused; fetching a new one");
        let token = self.access_token(plan, Some(&token), caller).await?;
        self.send(caller, self.build(step, ctx, token.expose())?)
            .await
    }

    pub(super) fn build(
        &self,
        step: &Step,
        ctx: &Ctx,
        token: &str,
    ) -> Result<UpstreamRequest, Error> {
        let credential = self.credential();
        let secret = Secrets {
            credential: credential.expose(),
            token,
        };
        let path = step
            .path
            .render(ctx, Secrets::NONE, Escape::PathSegment)
            .map_err(convert_problem)?
            .ok_or_else(|| {
                Error::internal(format!("step `{}`: a path parameter is missing", step.name))
            })?;
        let auth_query = self.mapping.auth.query.iter().map(|(k, t)| (k, t, secret));
        let step_query = step.query.iter().map(|(k, t)| (k, t, Secrets::NONE));
        let mut pairs = Vec::new();
        for (key, template, secrets) in auth_query.chain(step_query) {
            if let Some(v) = template
                .render(ctx, secrets, Escape::None)
                .map_err(convert_problem)?
            {
                pairs.push((key.as_str(), v));
            }
        }
        let url = self.vendor_url(&path, &pairs);
        let mut headers = HeaderMap::new();
        let header_value = |text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| Error::invalid("a value cannot be sent in a header"))
        };
        headers.insert(
            http::header::ACCEPT,
            header_value(self.mapping.request.accept.clone())?,
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("teamgate"),
        );
        for (name, template) in &self.mapping.auth.headers {
            if let Some(v) = template
                .render(ctx, secret, Escape::None)
                .map_err(convert_problem)?
            {
                let mut value = header_value(v)?;
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
        }
        for (name, template) in &step.headers {
            if let Some(v) = template
                .render(ctx, Secrets::NONE, Escape::None)
                .map_err(convert_problem)?
            {
                headers.insert(name.clone(), header_value(v)?);
            }
        }
        let body = match &step.body {
            Some(template) => template
                .render(ctx)
                .map_err(convert_problem)?
                .map(|v| Bytes::from(v.to_string())),
            None => None,
        };
        if body.is_some() || self.mapping.request.content_type_always {
            headers.insert(
                http::header::CONTENT_TYPE,
                header_value(self.mapping.request.content_type.clone())?,
            );
        }
        Ok(UpstreamRequest {
            method: step.method.clone(),
            url,
            headers,
            body,
        })
    }

    pub(super) async fn send(
        &self,
        op: Operation,
        mut request: UpstreamRequest,
    ) -> Result<UpstreamResponse, Error> {
        // Exported with the `otlp` feature. Without it, the span only gives context to lines
        // logged inside it, and at the default level none are: a `debug` span costs nothing
        // then (measured: about 1 µs a vendor call at `info`).
        #[cfg(feature = "otlp")]
        let span = tracing::info_span!(
            "upstream",
            backend = %self.name,
            operation = op.name(),
            method = %request.method,
        );
        #[cfg(not(feature = "otlp"))]
        let span = tracing::debug_span!(
            "upstream",
            backend = %self.name,
            operation = op.name(),
            method = %request.method,
        );
        let _ = TRACE.try_with(|trace| {
            // With the `otlp` feature, the vendor's parent is this exported span.
            #[cfg(feature = "otlp")]
            let parent =
                crate::otlp::traceparent(&span, trace).unwrap_or_else(|| trace.child_traceparent());
            #[cfg(not(feature = "otlp"))]
            let parent = trace.child_traceparent();
            let headers = &mut request.headers;
            if let Ok(parent) = HeaderValue::from_str(&parent) {
                headers.insert("traceparent", parent);
            }
            if let Some(state) = trace.state.as_deref() {
                if let Ok(state) = HeaderValue::from_str(state) {
                    headers.insert("tracestate", state);
                }
            }
        });
        let started = std::time::Instant::now();
        let answer = self
            .upstream
            .clone()
            .oneshot(request)
            .instrument(span)
            .await;
        self.metrics
            .upstream_latency(&self.name, op.name(), started.elapsed().as_secs_f64());
        answer.map_err(|e| {
            let outcome = match e {
                UpstreamError::Timeout => UpstreamOutcome::Timeout,
                UpstreamError::Connect => UpstreamOutcome::ConnectError,
                UpstreamError::TooLarge => UpstreamOutcome::BadAnswer,
                UpstreamError::Transport => UpstreamOutcome::TransportError,
                // Never sent: no upstream outcome.
                UpstreamError::OverBudget { retry_after_secs } => {
                    return crate::fleet::budget::refused(retry_after_secs)
                }
            };
            self.metrics.upstream(&self.name, op.name(), outcome);
            let (code, origin) = match e {
                UpstreamError::Timeout => (ErrorCode::UpstreamTimeout, Origin::Network),
                UpstreamError::Connect => (ErrorCode::UpstreamUnavailable, Origin::Network),
                UpstreamError::Transport => (ErrorCode::UpstreamError, Origin::Network),
                // The vendor did answer, too much.
                UpstreamError::TooLarge => (ErrorCode::UpstreamError, Origin::Vendor),
                UpstreamError::OverBudget { .. } => unreachable!("answered above"),
            };
            Error::new(code, e.to_string()).from_origin(origin)
        })
    }
}

/// The value at a plain path, if every member on the way is there.
fn node_mut<'a>(ctx: &'a mut Value, names: &[String]) -> Option<&'a mut Value> {
    let mut node = ctx;
    for name in names {
        node = node.get_mut(name)?;
    }
    Some(node)
}

/// A list longer than the mapping reads whole: refused, never cut.
fn too_many(step: &Step, max: usize) -> Error {
    Error::new(
        ErrorCode::UpstreamError,
        format!(
            "the list of step `{}` has more than {max} items, the most this backend's mapping \
             reads (`pages.max_items`); nothing was cut or changed",
            step.name
        ),
    )
    .from_origin(Origin::Teamgate)
}

pub(super) fn parse_body(answer: &UpstreamResponse) -> Option<Result<Value, ()>> {
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(serde_json::from_slice(&answer.body).map_err(|_| ()))
}

/// `Some(true)` when the expression selects something that is not `false`.
pub(super) fn present(expr: &Expr, ctx: &Ctx) -> Result<Option<bool>, Error> {
    Ok(Some(
        expr.eval(ctx)
            .map_err(convert_problem)?
            .is_some_and(|v| v != Value::Bool(false)),
    ))
}

impl Backend {
    /// The vendor's words with the credential in use (forwarded or configured) and anything
    /// shaped like a credential masked.
    fn redacted(&self, mut err: VendorError) -> VendorError {
        let credential = self.credential();
        let secrets = [credential.expose()];
        let clean = |text: Option<String>| text.map(|t| redact(&t, &secrets).into_owned());
        err.message = clean(err.message);
        err.code = clean(err.code);
        err
    }
}

pub(super) fn vendor_problem(code: ErrorCode, err: VendorError, step: &str) -> Error {
    let detail = match &err.message {
        Some(m) => format!(
            "the backend answered HTTP {} to step `{step}`: {m}",
            err.status
        ),
        None => format!("the backend answered HTTP {} to step `{step}`", err.status),
    };
    let mut problem = Error::new(code, detail).from_origin(Origin::Vendor);
    problem.retry_after = err
        .retry_after
        .or((code == ErrorCode::RateLimited).then_some(1));
    problem.upstream = Some(Box::new(UpstreamDetail {
        status: err.status,
        code: err.code,
        message: err.message,
    }));
    problem
}
