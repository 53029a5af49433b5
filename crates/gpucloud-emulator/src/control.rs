//! The emulator's own endpoints under `/_emulator/`, outside both APIs (no key, no faults):
//! `GET /_emulator/state`, `PUT /_emulator/pods/{id}/gpu-utilization` and
//! `POST /_emulator/pods/{id}/interrupt`.

use crate::shared::Shared;
use crate::state::{self, EmulatedPod};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

pub(crate) fn set_utilization(state: &mut state::State, id: &str, percent: u8) -> bool {
    let root = state.home_root.clone();
    match state.pods.iter_mut().find(|p| p.id == id && !p.terminated) {
        Some(pod) => {
            pod.gpu_utilization = percent.min(100);
            crate::ssh::write_utilization(&root, pod.api, &pod.id, pod.node_count(), pod.gpu_utilization);
            true
        }
        None => false,
    }
}

/// `PUT /_emulator/pods/{id}/gpu-utilization` with `{"percent": N}`: the control endpoint for
/// [`Emulator::set_gpu_utilization`], for a standalone emulator.
pub(crate) async fn put_utilization(
    axum::extract::State(inner): axum::extract::State<Shared>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let percent = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["percent"].as_u64())
        .and_then(|p| u8::try_from(p).ok())
        .filter(|p| *p <= 100);
    let Some(percent) = percent else {
        return (StatusCode::UNPROCESSABLE_ENTITY, "body must be {\"percent\": 0-100}").into_response();
    };
    if set_utilization(&mut inner.state(), &id, percent) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such live pod").into_response()
    }
}

/// `POST /_emulator/pods/{id}/interrupt`, optionally with `{"how": "terminated" | "stopped" |
/// "gone"}`: [`crate::Emulator::interrupt`] for a standalone emulator. 204 when done; 404 for
/// no such live pod; 409 for a pod that is not spot capacity; 422 for another body.
pub(crate) async fn post_interrupt(
    axum::extract::State(inner): axum::extract::State<Shared>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let how = if body.iter().all(u8::is_ascii_whitespace) {
        Some(state::Interruption::default())
    } else {
        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| match &v["how"] {
            serde_json::Value::Null => Some(state::Interruption::default()),
            serde_json::Value::String(how) => state::Interruption::parse(how),
            _ => None,
        })
    };
    let Some(how) = how else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "body must be empty or {\"how\": \"terminated\"|\"stopped\"|\"gone\"}",
        )
            .into_response();
    };
    match inner.state().interrupt_pod(&id, how) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why @ "no such live pod") => (StatusCode::NOT_FOUND, why).into_response(),
        Err(why) => (StatusCode::CONFLICT, why).into_response(),
    }
}

pub(crate) async fn inspect(axum::extract::State(inner): axum::extract::State<Shared>) -> Response {
    let state = inner.state();
    let pods: Vec<&EmulatedPod> = state.pods.iter().filter(|p| !p.terminated).collect();
    axum::Json(serde_json::json!({"pods": pods, "volumes": state.volumes, "requests": state.requests, "requests_by_route": state.requests_by_route, "creates": state.creates,
                                  "quota": inner.quota().stats.clone(),
                                  "faults": inner.faults().injected.iter().map(|(k, v)| (k.name(), *v)).collect::<BTreeMap<_, _>>()}))
    .into_response()
}
