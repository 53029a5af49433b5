//! Every route of the emulator, assembled in one place: each API's handlers, the billing reads,
//! logs and secrets, the middleware around them, and the emulator's own `/_emulator/` endpoints
//! outside it.

use crate::shared::Shared;
use crate::{billing, control, errors, logs, middleware, primeintellect, runpod, runpod_resources, secrets};
use axum::Router;
use std::sync::Arc;

/// The whole application, its state bound.
pub(crate) fn app(inner: &Shared) -> Router {
    let api = Router::new()
        .merge(primeintellect::routes())
        .merge(billing::primeintellect_routes())
        .merge(runpod::routes())
        .merge(runpod_resources::routes())
        .merge(billing::runpod_routes())
        .merge(secrets::routes())
        .merge(logs::routes())
        .fallback(errors::not_found)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(inner), middleware::validate))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(inner), middleware::gate));
    Router::new()
        .route("/_emulator/state", axum::routing::get(control::inspect))
        .route("/_emulator/pods/{id}/gpu-utilization", axum::routing::put(control::put_utilization))
        .merge(api)
        .with_state(Arc::clone(inner))
}
