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
//! - **Spot interruptions**: [`Emulator::interrupt`] or `POST /_emulator/pods/{id}/interrupt`
//!   ends a PrimeIntellect spot pod as the provider would (no request, status change, SSH cut,
//!   optionally gone); [`Emulator::set_spot_lifetime`] does it to every spot pod after a while
//!   (the preemption fault); spot pods report `isSpot: true`.
//! - **Cluster members that die**: [`Emulator::fail_pod`] puts any pod in `ERROR` (SSH cut,
//!   processes killed); [`Emulator::set_member_lifetime`] does it to one member of every RunPod
//!   cluster (the highest rank) once it has run a while.
//! - **PrimeIntellect multi-node offers**: served by `/availability/multi-node` (and its
//!   summary, and the legacy `/availability/clusters`), never by `/availability/gpus`; a create
//!   from one is one pod with a `clusterId` whose nodes are each a real SSH host
//!   (`sshConnection`/`ip` lists, one entry per node), ended together; no rank or environment is
//!   set on the nodes, none being documented ([`Emulator::node_dir`],
//!   [`EmulatedPod::node_ports`]; see `primeintellect.rs`).
//! - **Inspection**: [`Emulator::live_pods`], [`Emulator::stats`], and `GET /_emulator/state`.
//! - **Clusters** (RunPod `/v2/clusters`): created in one data center, members real SSH hosts with
//!   RunPod's documented cluster environment (`MASTER_ADDR`, `NODE_RANK`, `WORLD_SIZE`, ...),
//!   hidden from `GET /v2/pods` unless `includeClusterPods=true`, `409` on member updates and
//!   deletes, all ended by the cluster's delete; [`Emulator::clusters`].
//! - **Coverage** ([`COVERAGE`]): all of RunPod v2, PrimeIntellect's compute surface;
//!   other documented operations answer `501` "not emulated" in the provider's error shape. The
//!   providers' own clients (`prime`, RunPod's MCP server) work against it unmodified.
//! - **Request log** ([`EmulatorConfig::log_requests`]): one JSON line per exchange, secrets
//!   masked.
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

// The modules, bottom up; each imports only modules above it in this list (checked by
// `tests/layers.rs`):
// - leaves: `wire` (encode and decode helpers), `catalog`, `cursor`, `faults`, `state` (what the
//   emulator remembers and what it billed);
// - `quota`, `config`, `errors` (each provider's error shapes), `strict` (the documents);
// - `shared` (the state every handler holds), `ssh` (pods as SSH hosts), `middleware`;
// - the handlers: `primeintellect`, `runpod`, `runpod_clusters`, `billing`, `secrets`, `logs`,
//   `control`;
// - `routes` (all of them assembled), and this file (the server and its public face).
mod billing;
mod catalog;
mod config;
mod control;
mod cursor;
mod errors;
mod faults;
mod logs;
mod middleware;
mod primeintellect;
mod procs;
mod quota;
mod request_log;
mod routes;
mod runpod;
mod runpod_clusters;
mod runpod_resources;
mod secrets;
mod shared;
mod ssh;
mod state;
mod strict;
mod wire;

pub use config::{EmulatorConfig, random_api_key};
pub use faults::{FaultConfig, FaultKind};
pub use quota::{Quota, QuotaStats, QuotaWindow};
pub use routes::COVERAGE;
pub use ssh::BANNER as SSH_BANNER;
pub use state::{
    Api, Charge, ChargeKind, ClusterMember, EMULATED_TEAMS, EmulatedCluster, EmulatedPod, EmulatedSshKey,
    EmulatedVolume, Interruption, PRIMEINTELLECT_DISK_USD_PER_GB_HOUR, RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH,
    RUNPOD_VOLUME_USD_PER_GB_MONTH,
};
pub use strict::ResponseChecks;

// `ssh` names the shared state as `crate::Inner` (it is another engineer's file; this keeps it
// unchanged): the name resolves to `shared`, where it lives.
pub(crate) use shared::Inner;
use shared::Shared;

use faults::FaultInjector;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the preemption fault ([`Emulator::set_spot_lifetime`]) looks for spot pods to take
/// back, and the member fault ([`Emulator::set_member_lifetime`]) for cluster members to fail.
const PREEMPTION_CHECK: Duration = Duration::from_millis(100);

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

impl Emulator {
    /// Starts the emulator on `127.0.0.1:config.port`.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let homes = state::PodHomes { root: ssh::new_home_root(), of: ssh::node_home };
        let inner = Arc::new(Inner {
            state: Mutex::new(state::State::new(config.seed, homes)),
            faults: Mutex::new(FaultInjector::new(config.faults.clone(), config.seed)),
            quota: Mutex::new(quota::QuotaState::default()),
            response_checks: Mutex::default(),
            request_log: config.log_requests.as_deref().map(request_log::RequestLog::open).transpose()?,
            base_url: format!("http://{addr}"),
            config,
        });
        let app = routes::app(&inner);
        // The preemption fault's clock ([`Emulator::set_spot_lifetime`]): until the emulator goes.
        let preempting = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PREEMPTION_CHECK).await;
                let Some(inner) = preempting.upgrade() else { return };
                let ready_delay = inner.config.ready_delay;
                let mut state = inner.state();
                state.preempt_expired_spot(ready_delay);
                state.fail_expired_members(ready_delay);
            }
        });
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

    /// The pod-scoped `RUNPOD_API_KEY` RunPod pod `id` was given (in its environment), for
    /// tests: accepted for that pod's own routes only.
    pub fn pod_scoped_key(&self, id: &str) -> Option<String> {
        self.inner.state().pods.iter().find(|p| p.api == Api::RunPod && p.id == id).map(|p| p.pod_key.clone())
    }

    /// Pods that are not terminated.
    pub fn live_pods(&self) -> Vec<EmulatedPod> {
        self.inner.state().pods.iter().filter(|p| !p.terminated).cloned().collect()
    }

    /// Every pod ever created, terminated ones included.
    pub fn all_pods(&self) -> Vec<EmulatedPod> {
        self.inner.state().pods.clone()
    }

    /// RunPod clusters that exist (deleted ones are gone; their members stay, terminated).
    pub fn clusters(&self) -> Vec<EmulatedCluster> {
        self.inner.state().clusters.clone()
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
            primary: false,
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
                // RunPod's container disk default here, PrimeIntellect's offer default.
                disk_size: if api == Api::RunPod { 50 } else { 100 },
                vcpus: 8,
                memory: 64,
                spot: false,
                currency: "USD".into(),
                disks: Vec::new(),
                template_id: None,
                args: String::new(),
                cpu_flavor: None,
            });
            // Seeded pods are already running.
            if let Some(seeded) = state.pods.last_mut() {
                seeded.created = std::time::Instant::now() - self.inner.config.ready_delay;
            }
        }
    }

    /// Interrupts PrimeIntellect spot pod `id` the way a provider reclaiming its capacity would,
    /// with no request from anyone: its status leaves `ACTIVE` (`how`: `TERMINATED`, `STOPPED`,
    /// or gone altogether, reads answering 404), its SSH connections are cut, its processes
    /// (detached ones included) killed, and its bill closes. PrimeIntellect documents no
    /// preemption notice or status, so none is given. Also `POST /_emulator/pods/{id}/interrupt`
    /// (`{"how": "terminated" | "stopped" | "gone"}`). `Err` says why not: no such live pod, or
    /// not spot capacity (on-demand pods are never interrupted).
    pub fn interrupt(&self, id: &str, how: Interruption) -> Result<(), &'static str> {
        self.inner.state().interrupt_pod(id, how)
    }

    /// The preemption fault: from now on every PrimeIntellect spot pod is interrupted, unasked, as
    /// by [`Emulator::interrupt`] (`TERMINATED`), once it has been `ACTIVE` for `lifetime` (checked
    /// every 100 ms); `None` turns it off. On-demand pods are never taken back.
    pub fn set_spot_lifetime(&self, lifetime: Option<Duration>) {
        self.inner.state().spot_lifetime = lifetime;
    }

    /// The member fault: from now on, in every RunPod cluster, one member (the highest-ranked) is
    /// put in error, unasked, as by [`Emulator::fail_pod`] (its status leaves `RUNNING`, its SSH
    /// connections are cut, its processes killed), once it has been `RUNNING` for `lifetime`
    /// (checked every 100 ms, with the preemption fault); the other members stay up, and a
    /// cluster that already has a failed member loses no more. `None` turns it off.
    pub fn set_member_lifetime(&self, lifetime: Option<Duration>) {
        self.inner.state().member_lifetime = lifetime;
    }

    /// Sets the GPU utilization, percent, that pod `id` reports on every GPU (RunPod's
    /// `runtime.gpus[].util`); pods start idle, at 0. `false` when there is no such pod.
    pub fn set_gpu_utilization(&self, id: &str, percent: u8) -> bool {
        control::set_utilization(&mut self.inner.state(), id, percent)
    }

    /// Puts pod `id` of `api` in error (RunPod and PrimeIntellect `ERROR`): it stops billing and
    /// answering SSH (open connections are cut), and its processes, detached ones included, are
    /// killed, as a machine that died; a RunPod cluster counts it in `pods.byStatus.ERROR`. A
    /// PrimeIntellect multi-node pod fails whole: every node is cut and has its processes killed.
    /// `false` when there is no such live pod.
    pub fn fail_pod(&self, api: Api, id: &str) -> bool {
        self.inner.state().fail_pod(api, id)
    }

    /// The directory that holds PrimeIntellect disk `id`'s files: what a pod it is attached to
    /// sees at `/data` ([`Emulator::mounts_disks`]), across pods.
    pub fn disk_dir(&self, id: &str) -> std::path::PathBuf {
        crate::ssh::disk_dir(&self.inner.state().home_root, id)
    }

    /// Whether PrimeIntellect pods get their own `/data` here (their attached disk, or an empty
    /// directory of their own): each SSH session in a private mount namespace, which takes
    /// Linux and root. Elsewhere a command's `/data` is this machine's.
    pub fn mounts_disks() -> bool {
        crate::ssh::mounts_disks()
    }

    /// The directory pod `id` of `api` runs its commands in: its container disk, which a start
    /// wipes ("ephemeral, wiped on restart"), keeping what lies under a volume's mount path. For
    /// a PrimeIntellect multi-node pod, node 0's ([`Emulator::node_dir`]).
    pub fn pod_dir(&self, api: Api, id: &str) -> std::path::PathBuf {
        crate::ssh::pod_home(&self.inner.state().home_root, api, id)
    }

    /// The directory node `node` (0-based, in the order of the pod's `sshConnection` list) of
    /// PrimeIntellect multi-node pod `id` runs its commands in: each node has its own, and node
    /// 0's is [`Emulator::pod_dir`]. Removed, on every node, when the pod is terminated. The
    /// path is computed, not checked: a node the pod does not have names a directory that
    /// never exists.
    pub fn node_dir(&self, api: Api, id: &str, node: usize) -> std::path::PathBuf {
        crate::ssh::node_home(&self.inner.state().home_root, api, id, node)
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
        // The pods' directories go with the emulator (their listeners stop with it), and so do
        // the processes they started, detached ones included.
        let root = self.inner.state().home_root.clone();
        procs::kill_marked(&root, true);
        let _ = std::fs::remove_dir_all(&root);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
