//! RunPod account secrets (`/v2/account/secrets`, new in the 953afcc document): listed, created,
//! read, updated and deleted; the value is write-only and never returned.

use crate::errors::runpod::problem;
use crate::shared::Shared;
use crate::state::{Api, EmulatedSecret, now_rfc3339};
use crate::wire::wire;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runpod_api::types;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v2/account/secrets", get(list_secrets).post(create_secret))
        .route("/v2/account/secrets/{id}", get(get_secret).patch(update_secret).delete(delete_secret))
}

fn secret_json(secret: &EmulatedSecret) -> Value {
    wire::<types::Secret>(json!({
        "id": secret.id, "name": secret.name, "description": secret.description,
        "createdAt": secret.created_at, "valueLastUpdatedAt": secret.value_last_updated_at,
    }))
}

async fn list_secrets(State(shared): State<Shared>) -> Response {
    let secrets: Vec<Value> = shared.state().secrets.iter().filter(|s| s.api == Api::RunPod).map(secret_json).collect();
    axum::Json(wire::<types::ListSecretsResponse>(json!({ "secrets": secrets }))).into_response()
}

/// `CreateSecretRequest.name`: `^[a-zA-Z_][a-zA-Z0-9_.\-/]*$`, 1-191 characters, and "names
/// beginning with the reserved prefix `RUNPOD` are rejected (case-insensitive)".
fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if !(first_ok && rest_ok) || name.len() > 191 {
        return Some(format!("$.name: {name:?} does not match ^[a-zA-Z_][a-zA-Z0-9_.\\-/]*$ (at most 191 characters)"));
    }
    name.to_ascii_uppercase().starts_with("RUNPOD").then(|| format!("$.name: {name:?} uses the reserved prefix RUNPOD"))
}

async fn create_secret(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::CreateSecretRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let name = request.name.to_string();
    if let Some(detail) = name_problem(&name) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &detail);
    }
    let mut state = shared.state();
    if state.secrets.iter().any(|s| s.api == Api::RunPod && s.name == name) {
        return problem(StatusCode::CONFLICT, "A secret with this name already exists.");
    }
    let now = now_rfc3339();
    let secret = EmulatedSecret {
        api: Api::RunPod,
        team_id: None,
        is_file: false,
        id: state.new_id(Api::RunPod),
        name,
        description: request.description.map(|d| d.to_string()),
        value: request.value.to_string(),
        created_at: now.clone(),
        value_last_updated_at: now,
    };
    let body = secret_json(&secret);
    state.secrets.push(secret);
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn get_secret(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match shared.state().secrets.iter().find(|s| s.api == Api::RunPod && s.id == id) {
        Some(secret) => axum::Json(secret_json(secret)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "secret not found"),
    }
}

/// PATCH: "Only the provided fields are updated; at least one field is required" (`minProperties: 1`).
async fn update_secret(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: types::UpdateSecretRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    if request.value.is_none() && request.description.is_none() {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "$: at least one of value, description is required");
    }
    let mut state = shared.state();
    let Some(secret) = state.secrets.iter_mut().find(|s| s.api == Api::RunPod && s.id == id) else {
        return problem(StatusCode::NOT_FOUND, "secret not found");
    };
    if let Some(value) = request.value {
        secret.value = value.to_string();
        secret.value_last_updated_at = now_rfc3339();
    }
    if let Some(description) = request.description {
        // `""` clears it.
        secret.description = Some(description.to_string()).filter(|d| !d.is_empty());
    }
    axum::Json(secret_json(secret)).into_response()
}

async fn delete_secret(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut state = shared.state();
    let before = state.secrets.len();
    state.secrets.retain(|s| !(s.api == Api::RunPod && s.id == id));
    if state.secrets.len() == before {
        return problem(StatusCode::NOT_FOUND, "secret not found");
    }
    StatusCode::NO_CONTENT.into_response()
}
