//! The layers every API request passes, outermost first: [`log`] (the request log, when
//! configured), [`gate`] (authentication, request
//! counters, the quota), [`faulty`] (latency and injected faults), [`validate`] (the request
//! checked against the provider's document, and optionally the answer too).

use crate::errors::{self, api_of};
use crate::faults::{FaultKind, RequestClass};
use crate::shared::{BannerDelay, InstallationFails, ListLag, LogDrop, PartialPlacement, Shared};
use crate::state::Api;
use crate::{quota, strict};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

fn classify(request: &Request) -> RequestClass {
    let path = request.uri().path();
    if path.ends_with("/log") || path.ends_with("/logs") {
        return RequestClass::Logs;
    }
    if path == "/v2/clusters" && request.method() == axum::http::Method::POST {
        return RequestClass::ClusterCreate;
    }
    let pods = path == "/api/v1/pods/" || path == "/v2/pods";
    match (request.method().as_str(), pods) {
        ("POST", true) => RequestClass::Create { primeintellect: api_of(path) == Api::PrimeIntellect },
        ("GET", true) => RequestClass::List,
        _ => RequestClass::Other,
    }
}

/// Auth and the quota around every API request, then latency and faults ([`faulty`]).
pub(crate) async fn gate(
    axum::extract::State(inner): axum::extract::State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let expected = format!("Bearer {}", inner.config.api_key);
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if given != expected {
        // A RunPod pod's own key ("limited in scope to only the pod") opens that pod's routes
        // only: `/v2/pods/{id}` and below. Anywhere else it is refused as a scoped key is.
        let token = given.strip_prefix("Bearer ").unwrap_or_default();
        let owner = (!token.is_empty())
            .then(|| {
                inner
                    .state()
                    .pods
                    .iter()
                    .find(|p| p.api == Api::RunPod && !p.terminated && p.pod_key == token)
                    .map(|p| p.id.clone())
            })
            .flatten();
        let Some(owner) = owner else { return errors::unauthorized(&path) };
        let own = format!("/v2/pods/{owner}");
        if path != own && !path.starts_with(&format!("{own}/")) {
            return errors::for_path(
                &path,
                StatusCode::FORBIDDEN,
                "this pod-scoped key is limited to its own pod's routes",
            );
        }
    }
    {
        let route = request.extensions().get::<MatchedPath>().map_or(path.as_str(), |m| m.as_str());
        let route = format!("{} {route}", request.method());
        let mut state = inner.state();
        state.requests += 1;
        *state.requests_by_route.entry(route).or_default() += 1;
    }
    let Some(quota) = &inner.config.quota else {
        return faulty(&inner, request, next).await;
    };
    let api = api_of(&path);
    let verdict = inner.quota().check(quota, api);
    let (mut response, headers) = match verdict {
        quota::Verdict::Admit(headers) => (faulty(&inner, request, next).await, headers),
        quota::Verdict::Refuse(wait, headers) => {
            let window = if api == Api::RunPod { "rate limit exceeded for a window" } else { "rate limit exceeded" };
            let mut response = errors::for_path(&path, StatusCode::TOO_MANY_REQUESTS, window);
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            (response, headers)
        }
    };
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Latency and injected faults around a request the quota let through.
async fn faulty(inner: &Shared, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let (fault, config) = {
        let mut faults = inner.faults();
        (faults.roll(classify(&request)), faults.config.clone())
    };
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    match fault {
        Some(FaultKind::RateLimit) => {
            let mut response = errors::for_path(&path, StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            let seconds = config.retry_after.as_secs_f64();
            let whole = seconds.ceil() as u64;
            let headers = response.headers_mut();
            // Integer seconds, as documented; only a retry_after configured below one second
            // (tests compressing time) is sent as the decimal it is.
            let retry_after = if seconds >= 1.0 { whole.to_string() } else { format!("{seconds}") };
            headers
                .insert(header::RETRY_AFTER, HeaderValue::from_str(&retry_after).expect("a number is a header value"));
            // `RateLimit` / `RateLimit-Policy` (the document's structured fields) come from the
            // configured quota (`--quota`): the gate adds them to every answer, this one
            // included. Without a quota the emulator is unlimited and sends them on no answer;
            // a header on the fault alone, describing a window no other answer mentions, would
            // leave clients pacing to a window that never reports its reset.
            return response;
        }
        Some(FaultKind::ServerError) => {
            return errors::for_path(&path, StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable");
        }
        Some(FaultKind::StockoutAs500) => {
            return errors::for_path(&path, StatusCode::INTERNAL_SERVER_ERROR, "no instances available");
        }
        Some(FaultKind::ListLag) => {
            request.extensions_mut().insert(ListLag(config.list_lag));
        }
        Some(FaultKind::InstallationFailure) => {
            request.extensions_mut().insert(InstallationFails);
        }
        Some(FaultKind::LogStreamDrop) => {
            request.extensions_mut().insert(LogDrop(config.log_drop_after));
        }
        Some(FaultKind::PartialPlacement) => {
            request.extensions_mut().insert(PartialPlacement(config.unplaced_nodes));
        }
        Some(FaultKind::SshBannerDelay) => {
            request.extensions_mut().insert(BannerDelay(config.banner_delay));
        }
        _ => {}
    }
    let response = next.run(request).await;
    match fault {
        Some(FaultKind::CreateThen500) if response.status().is_success() => {
            errors::for_path(&path, StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        Some(FaultKind::TruncatedBody) => {
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            let mut response = Response::from_parts(parts, Body::from(cut));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        Some(FaultKind::ConnectionReset) => {
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "emulated reset"))];
            Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
        }
        _ => response,
    }
}

/// Validates the request against its document, then hands it (body restored) to the handler,
/// and (when configured) checks the handler's answer against the document too.
pub(crate) async fn validate(
    axum::extract::State(shared): axum::extract::State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let api = api_of(&path);
    let Some(template) = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()) else {
        return next.run(request).await;
    };
    let query = crate::wire::query_pairs(request.uri().query().map(str::to_string));
    let method = request.method().clone();
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, strict::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return errors::for_path(&path, StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let violations = strict::check(api, &method, &template, &path, &query, Some(&bytes));
    if !violations.is_empty() {
        tracing::debug!(%method, %path, ?violations, "request refused by the document");
        return strict::refusal(api, &violations);
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if shared.config.check_responses {
        strict::check_response(&shared.response_checks, api, &method, &template, response).await
    } else {
        response
    }
}

/// Writes the exchange to the request log (when configured): the request's body is read (up to
/// the strict layer's limit) and handed on unchanged.
pub(crate) async fn log(
    axum::extract::State(shared): axum::extract::State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let Some(request_log) = shared.request_log.as_ref() else {
        return next.run(request).await;
    };
    let started = std::time::Instant::now();
    let (method, path, query) =
        (request.method().to_string(), request.uri().path().to_string(), request.uri().query().map(str::to_string));
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, strict::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return errors::for_path(&path, StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let response = next.run(Request::from_parts(parts, Body::from(bytes.clone()))).await;
    request_log.write(&crate::request_log::Exchange {
        method: &method,
        path: &path,
        query: query.as_deref(),
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        body: &bytes,
    });
    response
}
