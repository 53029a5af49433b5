//! RunPod's error shape: RFC 9457 problem documents (`application/problem+json`, the document's
//! `ErrorResponse`: `title`, `status`, `detail`, and `errors[]` on validation failures).

use crate::wire::wire;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use runpod_api::types;
use serde_json::json;

/// An RFC 9457 problem document.
pub(crate) fn problem(status: StatusCode, detail: &str) -> Response {
    let body = wire::<types::ErrorResponse>(json!({
        "title": status.canonical_reason().unwrap_or("Error"), "status": status.as_u16(), "detail": detail
    }));
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// The `422` a request the document refuses gets: one `errors[]` entry per violation, as the
/// document's own example (`"$: additional properties 'bogus' not allowed"`).
pub(crate) fn validation_failed(errors: Vec<String>) -> Response {
    let body = json!({"title": "Unprocessable Entity", "status": 422, "detail": "Request validation failed.", "errors": errors});
    (StatusCode::UNPROCESSABLE_ENTITY, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string())
        .into_response()
}
