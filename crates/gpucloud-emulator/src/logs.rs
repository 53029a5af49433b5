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
        .route("/api/v1/pods/{id}/log", get(primeintellect_log))
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

/// When pod `id` of `api` started logging: its creation, wall clock.
fn log_start(shared: &Shared, api: Api, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let state = shared.state();
    let pod = state.pods.iter().find(|p| p.api == api && p.id == id)?;
    chrono::DateTime::parse_from_rfc3339(&pod.created_at).ok().map(|t| t.to_utc())
}

/// The wall-clock time line `seq` was written: [`LINES_PER_SECOND`] lines a second from the
/// pod's creation.
fn written_at(start: chrono::DateTime<chrono::Utc>, seq: u64) -> chrono::DateTime<chrono::Utc> {
    start + chrono::Duration::milliseconds(i64::try_from(seq * 1000 / LINES_PER_SECOND).unwrap_or(i64::MAX / 2))
}

/// The first line written at or after `t`.
fn first_line_since(start: chrono::DateTime<chrono::Utc>, t: chrono::DateTime<chrono::Utc>) -> u64 {
    let ms = (t - start).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000 / LINES_PER_SECOND)
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

/// The line's timestamp: when it was written, wall clock, to the millisecond ("Log-event `id`
/// values are the event `ts` timestamp").
fn event_ts(start: chrono::DateTime<chrono::Utc>, seq: u64) -> String {
    written_at(start, seq).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The SSE id of line `seq`: its timestamp and the zero-padded sequence, so ids sort in stream
/// order and a resume names its line exactly (a `Last-Event-ID` that is a bare timestamp, as the
/// document describes, resumes from that time too).
fn event_id(start: chrono::DateTime<chrono::Utc>, seq: u64) -> String {
    format!("{}/{seq:012}", event_ts(start, seq))
}

fn event(id: &str, start: chrono::DateTime<chrono::Utc>, seq: u64) -> Bytes {
    let data = json!({"ts": event_ts(start, seq), "source": "container", "line": line(id, seq)});
    Bytes::from(format!("id: {}\ndata: {data}\n\n", event_id(start, seq)))
}

async fn runpod_log_stream(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    drop: Option<axum::Extension<crate::shared::LogDrop>>,
) -> Response {
    let (Some((count, _)), Some(began)) = (written(&shared, Api::RunPod, &id), log_start(&shared, Api::RunPod, &id))
    else {
        return runpod::problem(StatusCode::NOT_FOUND, "pod not found");
    };
    let time = |v: &str| chrono::DateTime::parse_from_rfc3339(v).ok().map(|t| t.to_utc());
    // `Last-Event-ID` "takes precedence over `since` and `tail`": it resumes from that event
    // (sent again; ours carry the line number after the timestamp, a bare timestamp resumes
    // from that time); then `since` ("the stream resumes from this point"); otherwise `tail`
    // lines of backfill.
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| match v.rsplit_once('/') {
        Some((_, seq)) => seq.parse::<u64>().ok(),
        None => time(v).map(|t| first_line_since(began, t)),
    });
    let pairs = query_pairs(query.clone());
    let since = pairs.iter().find(|(k, _)| k == "since").and_then(|(_, v)| time(v)).map(|t| first_line_since(began, t));
    let start = resume.or(since).unwrap_or_else(|| count.saturating_sub(tail_of(query, 100).min(5000)));
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
                let chunk = event(&id, began, next);
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
