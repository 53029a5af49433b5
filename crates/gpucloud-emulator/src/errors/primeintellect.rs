//! PrimeIntellect's error shapes. The service is a FastAPI application: routing and request
//! validation answer as FastAPI does (`{"detail": "Not Found"}`, `422 {"detail": [{loc, msg,
//! type}]}`); its handlers' own refusals use the document's `ErrorResponse`
//! (`{"errors": [{param, details}]}`) for `422` and `{"detail": ...}` otherwise.

use crate::wire::wire;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use primeintellect_api::types;
use serde_json::{Value, json};

/// A handler's refusal: the document's `ErrorResponse` for `422`, FastAPI's `{"detail": ...}`
/// (its `HTTPException`) otherwise.
pub(crate) fn error(status: StatusCode, param: &str, details: &str) -> Response {
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        let body = wire::<types::ErrorResponse>(json!({"errors": [{"param": param, "details": details}]}));
        (status, axum::Json(body)).into_response()
    } else {
        detail(status, details)
    }
}

/// FastAPI's `HTTPException` answer: `{"detail": "..."}`.
pub(crate) fn detail(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

/// FastAPI's request validation answer: `422 {"detail": [{type, loc, msg, input}]}`.
pub(crate) fn validation_failed(detail: Vec<Value>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({ "detail": detail }))).into_response()
}
