//! Each provider's error shapes, in one place: RunPod's RFC 9457 problem documents
//! ([`runpod`]) and PrimeIntellect's FastAPI answers ([`primeintellect`]). Handlers, billing,
//! the strict layer and the middleware all answer through these, so a refusal looks the same
//! whichever part of the emulator sends it.

pub(crate) mod primeintellect;
pub(crate) mod runpod;

use crate::state::Api;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;

/// Which API a request path belongs to: RunPod v2 under `/v2/`, PrimeIntellect otherwise.
pub(crate) fn api_of(path: &str) -> Api {
    if path.starts_with("/v2/") { Api::RunPod } else { Api::PrimeIntellect }
}

/// `status` with `detail`, in the error shape of the API `path` belongs to.
pub(crate) fn for_path(path: &str, status: StatusCode, detail: &str) -> Response {
    match api_of(path) {
        Api::RunPod => runpod::problem(status, detail),
        Api::PrimeIntellect => primeintellect::error(status, "request", detail),
    }
}

/// A missing or wrong bearer token.
pub(crate) fn unauthorized(path: &str) -> Response {
    match api_of(path) {
        Api::RunPod => runpod::problem(StatusCode::UNAUTHORIZED, "missing or invalid bearer token"),
        Api::PrimeIntellect => primeintellect::detail(StatusCode::UNAUTHORIZED, "Authorization failed"),
    }
}

/// Unknown routes, in each provider's error shape.
pub(crate) async fn not_found(request: Request) -> Response {
    for_path(request.uri().path(), StatusCode::NOT_FOUND, "Not Found")
}
