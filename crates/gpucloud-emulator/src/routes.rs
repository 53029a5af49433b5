//! Every route of the emulator, assembled in one place: each API's handlers, the billing reads,
//! logs and secrets, the middleware around them, and the emulator's own `/_emulator/` endpoints
//! outside it.

use crate::errors::api_of;
use crate::shared::Shared;
use crate::{
    billing, control, errors, logs, middleware, primeintellect, runpod, runpod_clusters, runpod_resources, secrets,
    strict,
};
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// What the emulator covers, by API: the operation groups (the documents' tags) it answers, and
/// those it answers with "not emulated". `gpucloud emulator --help` prints it; `tests/coverage.rs`
/// checks it against the documents and the router.
pub const COVERAGE: &str = "\
Coverage, of the operations in the providers' documents: RunPod v2 60 of 60, PrimeIntellect 33 of 68
(its whole compute surface).
PrimeIntellect (/api/v1): availability (gpus, multi-node, clusters, disks, summaries), pods (create,
  list, get, status, history, logs, terminate), disks, SSH keys, user (whoami, slug), teams (list,
  members), secrets, templates (image check, registry credentials). Not emulated (501): sandboxes,
  evaluations, images, tunnels, FRP.
RunPod REST v2 (/v2): pods (create, list, get, update, actions, logs, delete), network volumes,
  catalog (GPUs, CPUs, data centers, public templates), templates, registries and ECR delegations,
  serverless endpoints (no workers run), billing, account SSH keys and secrets, clusters (create,
  list, get, rename, delete, member pods: each member an SSH host with RunPod's documented cluster
  environment; members hidden from /v2/pods unless includeClusterPods=true, 409 on member
  PATCH/DELETE/actions).";

/// The whole application, its state bound.
pub(crate) fn app(inner: &Shared) -> Router {
    let api = Router::new()
        .merge(primeintellect::routes())
        .merge(billing::primeintellect_routes())
        .merge(runpod::routes())
        .merge(runpod_resources::routes())
        .merge(runpod_clusters::routes())
        .merge(billing::runpod_routes())
        .merge(secrets::routes())
        .merge(logs::routes())
        .fallback(unrouted)
        .method_not_allowed_fallback(unrouted)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(inner), middleware::validate))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(inner), middleware::gate))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(inner), middleware::log));
    Router::new()
        .route("/_emulator/state", axum::routing::get(control::inspect))
        .route("/_emulator/pods/{id}/gpu-utilization", axum::routing::put(control::put_utilization))
        .route("/_emulator/pods/{id}/interrupt", axum::routing::post(control::post_interrupt))
        .merge(api)
        .with_state(Arc::clone(inner))
}

/// A request no route takes: a documented operation the emulator does not serve answers `501`
/// saying so, in the provider's error shape, so a client is not told a valid path is wrong; any
/// other method on a known path is FastAPI's or RunPod's `405`; anything else the provider's
/// `404`.
async fn unrouted(request: Request) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if let Some((template, tag)) = strict::documented(api_of(&path), &method, &path) {
        let detail = format!(
            "{method} {template} ({tag}) is documented but not emulated by gpucloud-emulator; see `gpucloud emulator --help` for what is"
        );
        return errors::for_path(&path, StatusCode::NOT_IMPLEMENTED, &detail);
    }
    let known_path = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .iter()
        .filter_map(|m| axum::http::Method::from_bytes(m.as_bytes()).ok())
        .any(|m| strict::documented(api_of(&path), &m, &path).is_some());
    if known_path {
        return errors::for_path(&path, StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    errors::not_found(request).await
}
