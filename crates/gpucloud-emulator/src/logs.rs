//! Pod logs: every pod writes [`LINES_PER_SECOND`] numbered lines while it exists.
//! PrimeIntellect returns the most recent ones as JSON; RunPod streams them as server-sent
//! events with resumable ids (`<timestamp>/<sequence>`), as its document describes.

use crate::errors::{primeintellect, runpod};
use crate::shared::Shared;
use crate::state::Api;
use crate::wire::query_pairs;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::time::Duration;

/// How fast an emulated pod logs.
pub const LINES_PER_SECOND: u64 = 10;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/pods/{pod_id}/log", get(primeintellect_log))
        .route("/v2/pods/{id}/logs", get(runpod_log_stream))
}

/// The text of line `seq` of pod `id`.
fn line(id: &str, seq: u64) -> String {
    format!("[{id}] step {seq}: loss {:.4}", 1.0 / (seq as f64 + 1.0))
}

/// How many lines pod `id` of `api` has written so far; `None` if there is no such pod, and
/// whether it is gone (terminated: it writes no more).
fn written(shared: &Shared, api: Api, id: &str) -> Option<(u64, bool)> {
    let state = shared.state();
    let pod = state.pods.iter().find(|p| p.api == api && p.id == id)?;
    let count = (pod.created.elapsed().as_millis() as u64) * LINES_PER_SECOND / 1000;
    Some((count, pod.terminated))
}

fn tail_of(query: Option<String>, default: u64) -> u64 {
    query_pairs(query).iter().find(|(k, _)| k == "tail").and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
}

async fn primeintellect_log(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((count, _)) = written(&shared, Api::PrimeIntellect, &id) else {
        return primeintellect::error(StatusCode::NOT_FOUND, "pod_id", "Pod not found");
    };
    let tail = tail_of(query, 100);
    let lines: Vec<String> = (count.saturating_sub(tail)..count).map(|seq| line(&id, seq)).collect();
    axum::Json(json!({ "logs": lines })).into_response()
}

/// The SSE id of line `seq`: a timestamp (of whole seconds) and the zero-padded sequence, so ids
/// sort in stream order.
fn event_id(seq: u64) -> String {
    let ts = chrono::DateTime::from_timestamp((1_780_000_000 + seq / LINES_PER_SECOND) as i64, 0).unwrap_or_default();
    format!("{}/{seq:012}", ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn event(id: &str, seq: u64) -> Bytes {
    let ts = event_id(seq);
    let ts = ts.split('/').next().unwrap_or_default();
    let data = json!({"ts": ts, "source": "container", "line": line(id, seq)});
    Bytes::from(format!("id: {}\ndata: {data}\n\n", event_id(seq)))
}

async fn runpod_log_stream(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    drop: Option<axum::Extension<crate::shared::LogDrop>>,
) -> Response {
    let Some((count, _)) = written(&shared, Api::RunPod, &id) else {
        return runpod::problem(StatusCode::NOT_FOUND, "pod not found");
    };
    // `Last-Event-ID` resumes from that event (sent again); otherwise `tail` lines of backfill.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('/').next())
        .and_then(|seq| seq.parse::<u64>().ok());
    let start = resume.unwrap_or_else(|| count.saturating_sub(tail_of(query, 100).min(5000)));
    let drop_after = drop.map(|axum::Extension(crate::shared::LogDrop(n))| n);
    let state = (shared, id, start, 0u64);
    let events = futures::stream::unfold(state, move |(shared, id, next, sent)| async move {
        if drop_after.is_some_and(|n| sent >= n) {
            let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "emulated log stream drop");
            return Some((Err(reset), (shared, id, u64::MAX, sent)));
        }
        if next == u64::MAX {
            return None;
        }
        loop {
            let (count, gone) = written(&shared, Api::RunPod, &id)?;
            if gone {
                return None; // a terminated pod's stream ends
            }
            if next < count {
                let chunk = event(&id, next);
                return Some((Ok(chunk), (shared, id, next + 1, sent + 1)));
            }
            tokio::time::sleep(Duration::from_millis(1000 / LINES_PER_SECOND)).await;
        }
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, "text/event-stream".parse().expect("a header value"));
    headers.insert(header::CACHE_CONTROL, "no-cache".parse().expect("a header value"));
    response
}
