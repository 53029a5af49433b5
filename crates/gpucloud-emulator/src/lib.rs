//! # gpucloud-emulator
//!
//! A local emulator of the PrimeIntellect API (`/api/v1/...`) and RunPod REST v2 (`/v2/...`) on
//! one loopback port, close enough that the generated clients and the `gpucloud` facade work
//! against it unchanged. Its wire format goes through the generated types, so what it sends is
//! what the providers' documents describe.
//!
//! - **State**: pods (`PROVISIONING` → `ACTIVE`/`RUNNING` after [`EmulatorConfig::ready_delay`],
//!   each a real SSH host on a loopback port while it runs: public-key auth with the pod's keys,
//!   commands run in a directory of its own, see `ssh.rs`; **commands run on this machine as the
//!   user running the emulator**), stop/start (RunPod), terminate, disks / network volumes.
//! - **Offers**: a catalog of both clouds, filtered like the real APIs (GPU type, count,
//!   regions, disks), paginated in PrimeIntellect's two shapes.
//! - **Auth**: `Authorization: Bearer <api_key>` is required (401 otherwise); request bodies
//!   are validated (PrimeIntellect 422 `errors[]`, RunPod problem+json).
//! - **Logs**: every pod writes ten numbered lines a second while it exists; PrimeIntellect's
//!   `GET /api/v1/pods/{id}/log?tail=N` returns the last `N` (`{"logs": [...]}`), RunPod's
//!   `GET /v2/pods/{id}/logs` streams them as server-sent events (`tail` backfill, then live;
//!   `Last-Event-ID` resumes from that event, which is sent again).
//! - **Teams** (PrimeIntellect): `GET /api/v1/user/teams` lists [`EMULATED_TEAMS`]; a pod or
//!   disk created with `team: {teamId}` belongs to that team (`teamId` in its record) and is
//!   listed with the key's other resources, as PrimeIntellect's lists take no team parameter; an
//!   unknown team is refused with 403.
//! - **Quota**, when configured ([`EmulatorConfig::quota`], [`Quota::documented`]): RunPod's
//!   documented per-key windows, sliding, with `RateLimit` and `RateLimit-Policy` on every
//!   RunPod response and 429 + `Retry-After` past a window; [`Emulator::quota_stats`].
//! - **Faults**, seeded: see [`FaultKind`] and [`FaultConfig`].
//! - **Billing**: pods bill their price while running, RunPod volumes their storage; RunPod's
//!   `/v2/billing/*` and PrimeIntellect's `/api/v1/pods/history` answer from those charges
//!   ([`Emulator::charges`], [`Emulator::backdate`]; see `billing.rs`).
//! - **Utilization**: RunPod pods report `runtime.gpus[].util`, idle (0) until set with
//!   [`Emulator::set_gpu_utilization`] or `PUT /_emulator/pods/{id}/gpu-utilization`
//!   (`{"percent": N}`).
//! - **Inspection**: [`Emulator::live_pods`], [`Emulator::stats`], and `GET /_emulator/state`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! use gpucloud_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! println!("PrimeIntellect and RunPod at {}", emulator.base_url());
//! assert_eq!(emulator.live_pods().len(), 0);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod billing;
mod catalog;
mod cursor;
mod faults;
mod logs;
mod primeintellect;
mod quota;
mod runpod;
mod secrets;
mod ssh;
mod state;
mod strict;

pub use billing::{
    Charge, ChargeKind, PRIMEINTELLECT_DISK_USD_PER_GB_HOUR, RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH,
    RUNPOD_VOLUME_USD_PER_GB_MONTH,
};
pub use faults::{FaultConfig, FaultKind};
pub use quota::{Quota, QuotaStats, QuotaWindow};
pub use ssh::BANNER as SSH_BANNER;
pub use state::{Api, EMULATED_TEAMS, EmulatedPod, EmulatedSshKey, EmulatedVolume};
pub use strict::ResponseChecks;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use faults::{FaultInjector, RequestClass};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The API key the emulator accepts unless configured otherwise.
pub const DEFAULT_API_KEY: &str = "emulator-key";

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The bearer token it accepts.
    pub api_key: String,
    /// Seed for ids and faults: the same seed replays the same run.
    pub seed: u64,
    /// How long a new pod provisions before it runs.
    pub ready_delay: Duration,
    /// Faults to inject.
    pub faults: FaultConfig,
    /// Loopback port (0 picks a free one).
    pub port: u16,
    /// Rate limits to enforce per API key (`Some(Quota::documented())`: RunPod's own), with
    /// RunPod's `RateLimit` headers on every response; `None`: unlimited.
    pub quota: Option<Quota>,
    /// How long a running PrimeIntellect pod installs its image (`installationStatus` ACTIVE,
    /// `installationProgress` rising) before it is FINISHED; zero: finished as it runs.
    pub installation_time: Duration,
    /// Check every JSON answer against the document's response schema for its status, as sent
    /// (before any injected fault changes it); see [`Emulator::response_checks`].
    pub check_responses: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.into(),
            seed: 1,
            ready_delay: Duration::from_secs(2),
            faults: FaultConfig::none(),
            port: 0,
            quota: None,
            installation_time: Duration::ZERO,
            check_responses: false,
        }
    }
}

/// Counters for tests and reports.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatorStats {
    /// Requests served (inspection endpoints excluded).
    pub requests: u64,
    /// The same, per route: `"GET /v2/pods"`, `"GET /v2/pods/{id}"`, `"GET /api/v1/pods/status"`...
    pub requests_by_route: BTreeMap<String, u64>,
    /// Pods created.
    pub creates: u64,
    /// Pods not terminated.
    pub live_pods: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
}

pub(crate) struct Inner {
    pub config: EmulatorConfig,
    state: Mutex<state::State>,
    faults: Mutex<FaultInjector>,
    quota: Mutex<quota::QuotaState>,
    response_checks: Mutex<strict::ResponseChecks>,
}

/// Shared state handed to every handler.
pub(crate) type Shared = Arc<Inner>;

impl Inner {
    pub fn state(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, FaultInjector> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn quota(&self) -> MutexGuard<'_, quota::QuotaState> {
        self.quota.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a PrimeIntellect create whose pod's installation is to fail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstallationFails;

/// Marks a create whose pod's SSH answers only this long after it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BannerDelay(pub Duration);

/// Marks a log stream that drops after this many events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogDrop(pub u64);

/// Marks a list request that should hide pods younger than the lag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListLag(pub Duration);

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    inner: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Checks that `value` decodes as the generated type `T`, so the emulator only sends what the
/// provider's document describes, and returns it **unchanged**: every build serves the same
/// bytes (camelCase keys and explicit nulls as the real APIs send them), so tests see what users
/// of `gpucloud emulator` get. Debug builds (every test) check and fail loudly; release builds
/// (benchmarks, `gpucloud emulator`) skip the check.
pub(crate) fn wire<T: serde::de::DeserializeOwned + Serialize>(value: serde_json::Value) -> serde_json::Value {
    if !cfg!(debug_assertions) {
        return value;
    }
    match serde_json::from_value::<T>(value.clone()) {
        Ok(_) => value,
        Err(e) => {
            // A bug in the emulator: fail loudly in tests rather than serve an off-spec body.
            debug_assert!(false, "emulator response does not match {}: {e}", std::any::type_name::<T>());
            tracing::error!(type_name = std::any::type_name::<T>(), error = %e, "emulator response does not match the API document");
            value
        }
    }
}

/// Query pairs in order, repeated keys kept (`regions=a&regions=b`).
pub(crate) fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn is_runpod(path: &str) -> bool {
    path.starts_with("/v2/")
}

fn unauthorized(path: &str) -> Response {
    if is_runpod(path) {
        runpod::problem(StatusCode::UNAUTHORIZED, "missing or invalid bearer token")
    } else {
        (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"detail": "Authorization failed"}))).into_response()
    }
}

fn provider_error(path: &str, status: StatusCode, detail: &str) -> Response {
    if is_runpod(path) { runpod::problem(status, detail) } else { primeintellect::error(status, "request", detail) }
}

fn classify(request: &Request) -> RequestClass {
    let path = request.uri().path();
    if path.ends_with("/log") || path.ends_with("/logs") {
        return RequestClass::Logs;
    }
    let pods = path == "/api/v1/pods/" || path == "/v2/pods";
    match (request.method().as_str(), pods) {
        ("POST", true) => RequestClass::Create { primeintellect: !is_runpod(path) },
        ("GET", true) => RequestClass::List,
        _ => RequestClass::Other,
    }
}

/// Auth and the quota around every API request, then latency and faults ([`faulty`]).
async fn gate(axum::extract::State(inner): axum::extract::State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let expected = format!("Bearer {}", inner.config.api_key);
    if request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return unauthorized(&path);
    }
    {
        let route = request.extensions().get::<axum::extract::MatchedPath>().map_or(path.as_str(), |m| m.as_str());
        let route = format!("{} {route}", request.method());
        let mut state = inner.state();
        state.requests += 1;
        *state.requests_by_route.entry(route).or_default() += 1;
    }
    let Some(quota) = &inner.config.quota else {
        return faulty(&inner, request, next).await;
    };
    let api = if is_runpod(&path) { Api::RunPod } else { Api::PrimeIntellect };
    let verdict = inner.quota().check(quota, api);
    let (mut response, headers) = match verdict {
        quota::Verdict::Admit(headers) => (faulty(&inner, request, next).await, headers),
        quota::Verdict::Refuse(wait, headers) => {
            let window = if is_runpod(&path) { "rate limit exceeded for a window" } else { "rate limit exceeded" };
            let mut response = provider_error(&path, StatusCode::TOO_MANY_REQUESTS, window);
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
            let mut response = provider_error(&path, StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
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
            return provider_error(&path, StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable");
        }
        Some(FaultKind::StockoutAs500) => {
            return provider_error(&path, StatusCode::INTERNAL_SERVER_ERROR, "no instances available");
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
        Some(FaultKind::SshBannerDelay) => {
            request.extensions_mut().insert(BannerDelay(config.banner_delay));
        }
        _ => {}
    }
    let response = next.run(request).await;
    match fault {
        Some(FaultKind::CreateThen500) if response.status().is_success() => {
            provider_error(&path, StatusCode::INTERNAL_SERVER_ERROR, "internal error")
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

fn set_utilization(state: &mut state::State, id: &str, percent: u8) -> bool {
    let root = state.home_root.clone();
    match state.pods.iter_mut().find(|p| p.id == id && !p.terminated) {
        Some(pod) => {
            pod.gpu_utilization = percent.min(100);
            ssh::write_utilization(&root, pod.api, &pod.id, pod.gpu_utilization);
            true
        }
        None => false,
    }
}

/// `PUT /_emulator/pods/{id}/gpu-utilization` with `{"percent": N}`: the control endpoint for
/// [`Emulator::set_gpu_utilization`], for a standalone emulator.
async fn put_utilization(
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

async fn inspect(axum::extract::State(inner): axum::extract::State<Shared>) -> Response {
    let state = inner.state();
    let pods: Vec<&EmulatedPod> = state.pods.iter().filter(|p| !p.terminated).collect();
    axum::Json(serde_json::json!({"pods": pods, "volumes": state.volumes, "requests": state.requests, "requests_by_route": state.requests_by_route, "creates": state.creates,
                                  "quota": inner.quota().stats.clone(),
                                  "faults": inner.faults().injected.iter().map(|(k, v)| (k.name(), *v)).collect::<BTreeMap<_, _>>()}))
    .into_response()
}

impl Emulator {
    /// Starts the emulator on `127.0.0.1:config.port`.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(state::State::new(config.seed)),
            faults: Mutex::new(FaultInjector::new(config.faults.clone(), config.seed)),
            quota: Mutex::new(quota::QuotaState::default()),
            response_checks: Mutex::default(),
            config,
        });
        let api = Router::new()
            .merge(primeintellect::routes())
            .merge(runpod::routes())
            .merge(logs::routes())
            .fallback(strict::not_found)
            .layer(axum::middleware::from_fn_with_state(Arc::clone(&inner), strict::validate))
            .layer(axum::middleware::from_fn_with_state(Arc::clone(&inner), gate));
        let app = Router::new()
            .route("/_emulator/state", axum::routing::get(inspect))
            .route("/_emulator/pods/{id}/gpu-utilization", axum::routing::put(put_utilization))
            .merge(api)
            .with_state(Arc::clone(&inner));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        Ok(Self { addr, inner, shutdown: Some(tx) })
    }

    /// `http://127.0.0.1:PORT`: the server root for both providers (`PRIME_API_BASE_URL` and
    /// `RUNPOD_API_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.inner.config.api_key
    }

    /// Pods that are not terminated.
    pub fn live_pods(&self) -> Vec<EmulatedPod> {
        self.inner.state().pods.iter().filter(|p| !p.terminated).cloned().collect()
    }

    /// Every pod ever created, terminated ones included.
    pub fn all_pods(&self) -> Vec<EmulatedPod> {
        self.inner.state().pods.clone()
    }

    /// SSH public keys registered with either API.
    pub fn ssh_keys(&self) -> Vec<EmulatedSshKey> {
        self.inner.state().ssh_keys.clone()
    }

    /// Registers `public_key` (an `authorized_keys` line) with the account on `api`, as the
    /// provider's console would: for tests and demos that need pods with SSH access (a RunPod
    /// pod answers SSH only when the account had keys at its create). Returns the key's id
    /// (PrimeIntellect; empty for RunPod, which keeps a plain list).
    pub fn add_ssh_key(&self, api: Api, public_key: &str) -> String {
        let mut state = self.inner.state();
        let id = match api {
            Api::PrimeIntellect => state.new_id(Api::PrimeIntellect),
            Api::RunPod => String::new(),
        };
        state.ssh_keys.push(EmulatedSshKey {
            api,
            id: id.clone(),
            name: "added by the emulator's owner".into(),
            public_key: public_key.trim().to_string(),
        });
        id
    }

    /// Volumes.
    pub fn volumes(&self) -> Vec<EmulatedVolume> {
        self.inner.state().volumes.clone()
    }

    /// Counters.
    pub fn stats(&self) -> EmulatorStats {
        let state = self.inner.state();
        EmulatorStats {
            requests: state.requests,
            requests_by_route: state.requests_by_route.clone(),
            creates: state.creates,
            live_pods: state.pods.iter().filter(|p| !p.terminated).count(),
            faults: self.inner.faults().injected.iter().map(|(k, v)| (k.name().to_string(), *v)).collect(),
        }
    }

    /// The responses checked against the documents so far, and what broke them (with
    /// [`EmulatorConfig::check_responses`]).
    pub fn response_checks(&self) -> ResponseChecks {
        self.inner.response_checks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests admitted and refused by the quota, per API, and the busiest window seen.
    pub fn quota_stats(&self) -> QuotaStats {
        self.inner.quota().stats.clone()
    }

    /// Replaces the fault configuration (the seeded sequence continues).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.inner.faults().config = faults;
    }

    /// Makes creates for this PrimeIntellect `cloudId`/`GPUType` or RunPod GPU id fail with
    /// "no instances available" (HTTP 500) while offers still list it (and starts of stopped
    /// RunPod pods of that GPU fail). A RunPod pod id as `key` fills only that pod's host: its
    /// start fails while other hosts still take creates.
    pub fn set_stocked_out(&self, key: &str, stocked_out: bool) {
        let mut state = self.inner.state();
        if stocked_out {
            state.stocked_out.insert(key.to_string());
        } else {
            state.stocked_out.remove(key);
        }
    }

    /// Adds `count` running PrimeIntellect or RunPod pods directly (for benchmarks and tests that
    /// need a large account without creating each pod through the API).
    pub fn seed_pods(&self, api: Api, count: usize) {
        let mut state = self.inner.state();
        let (gpu_type, provider_type) = match api {
            Api::PrimeIntellect => ("H100_80GB", "hyperstack"),
            Api::RunPod => ("NVIDIA H100 80GB HBM3", "SECURE"),
        };
        for i in 0..count {
            state.add_pod(state::NewPod {
                api,
                name: format!("seeded-{i}"),
                gpu_type: gpu_type.into(),
                socket: "SXM5".into(),
                gpu_count: 1,
                price: 2.0,
                provider_type: provider_type.into(),
                data_center: "CANADA-1".into(),
                image: "ubuntu_22_cuda_12".into(),
                env: Default::default(),
                team_id: None,
                installation_fails: false,
                ssh_port: None,
                banner_delay: Duration::ZERO,
                authorized_keys: Vec::new(),
                ports: vec!["22/tcp".into()],
                cuda_version: "12.8".into(),
                max_price: None,
                prepaid_hours: None,
                cmd: None,
                entrypoint: None,
            });
            // Seeded pods are already running.
            if let Some(seeded) = state.pods.last_mut() {
                seeded.created = std::time::Instant::now() - self.inner.config.ready_delay;
            }
        }
    }

    /// Sets the GPU utilization, percent, that pod `id` reports on every GPU (RunPod's
    /// `runtime.gpus[].util`); pods start idle, at 0. `false` when there is no such pod.
    pub fn set_gpu_utilization(&self, id: &str, percent: u8) -> bool {
        set_utilization(&mut self.inner.state(), id, percent)
    }

    /// The directory pod `id` of `api` runs its commands in: its container disk, which a start
    /// wipes ("ephemeral, wiped on restart"), keeping what lies under a volume's mount path.
    pub fn pod_dir(&self, api: Api, id: &str) -> std::path::PathBuf {
        crate::ssh::pod_home(&self.inner.state().home_root, api, id)
    }

    /// Every billing stretch so far, priced up to now: what the providers' billing reads add up
    /// to (see the `billing` module docs: pods bill their price while running, RunPod volumes
    /// their storage).
    pub fn charges(&self) -> Vec<Charge> {
        let state = self.inner.state();
        let now = chrono::Utc::now();
        let mut all = state.charges_until(Api::PrimeIntellect, now);
        all.extend(state.charges_until(Api::RunPod, now));
        all
    }

    /// Makes pod `id` of `api` look `by` older: its creation time, its termination time if it
    /// ended, and every billing stretch it has, move back by `by`, as if it had been created
    /// that much earlier (so a test can bill hours without waiting them, or, after a
    /// termination, place a whole life in the past).
    pub fn backdate(&self, api: Api, id: &str, by: Duration) {
        let mut state = self.inner.state();
        let span = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
        for charge in state.charges.iter_mut().filter(|c| c.api == api && c.id == id) {
            charge.start -= span;
            charge.end -= span;
        }
        if let Some(pod) = state.pod_mut(api, id) {
            pod.created = pod.created.checked_sub(by).unwrap_or(pod.created);
            if let Ok(created) = chrono::DateTime::parse_from_rfc3339(&pod.created_at) {
                pod.created_at = (created - span).to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            }
            // An ended pod ended that much earlier too: its history record's life is its bill's.
            if let Some(ended) = pod.terminated_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                pod.terminated_at = Some((ended - span).to_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            }
            // The open stretch starts earlier; a closed one was moved above.
            if let Some(since) = pod.running_since.as_mut() {
                *since -= span;
            }
            if let Some(since) = pod.stopped_since.as_mut() {
                *since -= span;
            }
        }
    }

    /// Stops the server and waits for it to release the port.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::task::yield_now().await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The pods' directories go with the emulator (their listeners stop with it).
        let _ = std::fs::remove_dir_all(&self.inner.state().home_root);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
