//! Seeded fault injection.

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A kind of misbehaviour the emulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After` (and RunPod's `RateLimit`), request not processed.
    RateLimit,
    /// 503, request not processed.
    ServerError,
    /// The request is processed, then the connection drops in the middle of the response body.
    ConnectionReset,
    /// The request is processed, then the response body is cut short (invalid JSON).
    TruncatedBody,
    /// Creates only: no capacity, reported as HTTP 500, nothing created.
    StockoutAs500,
    /// Creates only (pods and RunPod clusters): the pod or cluster is created, then the answer is
    /// a 500.
    CreateThen500,
    /// Lists only: pods created in the last `list_lag` are missing from the list.
    ListLag,
    /// PrimeIntellect creates only: the pod is created and becomes `ACTIVE`, but its
    /// `installationStatus` turns `ERROR` (with an `installationFailure` message) and stays so.
    InstallationFailure,
    /// Creates only: the pod's SSH endpoint starts answering only [`FaultConfig::banner_delay`]
    /// after the pod reports running.
    SshBannerDelay,
    /// Log streams only: a RunPod log stream drops after [`FaultConfig::log_drop_after`] events.
    LogStreamDrop,
    /// SSH commands only: the connection to the pod is cut while a command runs (its fate is
    /// unknown to the client).
    SshDropMidCommand,
    /// SSH commands only: once a command has started, the connection stays open but goes silent
    /// (nothing read or answered, keepalives included), as a dead link behind a NAT looks.
    SshStall,
    /// SSH commands only: once a command has ended (its exit status sent), the connection goes
    /// silent, so the client's channel close and its ControlMaster's shutdown are never answered.
    SshMasterHang,
    /// RunPod cluster creates only: the cluster is created (`201`), but
    /// [`FaultConfig::unplaced_nodes`] of its nodes (the highest ranks, never the primary) are
    /// never placed: they stay `PROVISIONING`, with no rank and no private address, until the
    /// cluster is deleted.
    PartialPlacement,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 14] = [
        FaultKind::RateLimit,
        FaultKind::ServerError,
        FaultKind::ConnectionReset,
        FaultKind::TruncatedBody,
        FaultKind::StockoutAs500,
        FaultKind::CreateThen500,
        FaultKind::ListLag,
        FaultKind::InstallationFailure,
        FaultKind::SshBannerDelay,
        FaultKind::LogStreamDrop,
        FaultKind::SshDropMidCommand,
        FaultKind::SshStall,
        FaultKind::SshMasterHang,
        FaultKind::PartialPlacement,
    ];

    /// The kebab-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimit => "rate-limit",
            FaultKind::ServerError => "server-error",
            FaultKind::ConnectionReset => "connection-reset",
            FaultKind::TruncatedBody => "truncated-body",
            FaultKind::StockoutAs500 => "stockout-as-500",
            FaultKind::CreateThen500 => "create-then-500",
            FaultKind::ListLag => "list-lag",
            FaultKind::InstallationFailure => "installation-failure",
            FaultKind::SshBannerDelay => "ssh-banner-delay",
            FaultKind::LogStreamDrop => "log-stream-drop",
            FaultKind::SshDropMidCommand => "ssh-drop-mid-command",
            FaultKind::SshStall => "ssh-stall",
            FaultKind::SshMasterHang => "ssh-master-hang",
            FaultKind::PartialPlacement => "partial-placement",
        }
    }

    /// Parses [`FaultKind::name`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn applies_to(self, request: RequestClass) -> bool {
        match self {
            FaultKind::StockoutAs500 | FaultKind::SshBannerDelay => matches!(request, RequestClass::Create { .. }),
            // A RunPod cluster create can bill and then answer 500 too.
            FaultKind::CreateThen500 => matches!(request, RequestClass::Create { .. } | RequestClass::ClusterCreate),
            FaultKind::InstallationFailure => request == RequestClass::Create { primeintellect: true },
            FaultKind::PartialPlacement => request == RequestClass::ClusterCreate,
            FaultKind::ListLag => request == RequestClass::List,
            FaultKind::LogStreamDrop => request == RequestClass::Logs,
            FaultKind::SshDropMidCommand | FaultKind::SshStall | FaultKind::SshMasterHang => {
                request == RequestClass::SshCommand
            }
            // These hold the whole body back, which a log stream never finishes.
            FaultKind::ConnectionReset | FaultKind::TruncatedBody => {
                !matches!(request, RequestClass::Logs | RequestClass::SshCommand)
            }
            _ => request != RequestClass::SshCommand,
        }
    }
}

/// What kind of request a fault is being considered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// Creating a pod (on PrimeIntellect or RunPod).
    Create {
        /// Whether it is a PrimeIntellect create.
        primeintellect: bool,
    },
    /// Creating a RunPod cluster.
    ClusterCreate,
    /// Listing pods.
    List,
    /// Reading a pod's log.
    Logs,
    /// A command run over SSH on a pod.
    SshCommand,
    /// Anything else.
    Other,
}

/// Which faults to inject, how often, and their parameters.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Probability that a request gets a fault (0.0 to 1.0).
    pub rate: f64,
    /// Kinds to choose from (uniformly among those that apply to the request).
    pub kinds: Vec<FaultKind>,
    /// Extra latency added to every request.
    pub latency: Duration,
    /// `Retry-After` sent with injected 429s.
    pub retry_after: Duration,
    /// How long a new pod stays invisible to lists under [`FaultKind::ListLag`].
    pub list_lag: Duration,
    /// `true`: only pod and cluster creates get faults (everything else is served normally).
    pub creates_only: bool,
    /// How long after running a pod's SSH stays silent under [`FaultKind::SshBannerDelay`].
    pub banner_delay: Duration,
    /// How many events a log stream sends before it drops under [`FaultKind::LogStreamDrop`].
    pub log_drop_after: u64,
    /// How many nodes of a cluster are never placed under [`FaultKind::PartialPlacement`]
    /// (at most all but the primary).
    pub unplaced_nodes: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            rate: 0.0,
            kinds: FaultKind::ALL.to_vec(),
            latency: Duration::ZERO,
            retry_after: Duration::from_secs(1),
            list_lag: Duration::from_millis(500),
            creates_only: false,
            banner_delay: Duration::from_secs(1),
            log_drop_after: 3,
            unplaced_nodes: 1,
        }
    }
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every kind at `rate`.
    pub fn all(rate: f64) -> Self {
        Self { rate, ..Self::default() }
    }
}

/// The seeded dice and the tally.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    pub config: FaultConfig,
    rng: StdRng,
    pub injected: BTreeMap<FaultKind, u64>,
}

impl FaultInjector {
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Self { config, rng: StdRng::seed_from_u64(seed), injected: BTreeMap::new() }
    }

    /// Decides whether this request gets a fault, and which.
    pub fn roll(&mut self, request: RequestClass) -> Option<FaultKind> {
        let create = matches!(request, RequestClass::Create { .. } | RequestClass::ClusterCreate);
        if (self.config.creates_only && !create)
            || self.config.rate <= 0.0
            || !self.rng.random_bool(self.config.rate.min(1.0))
        {
            return None;
        }
        let candidates: Vec<FaultKind> = self.config.kinds.iter().copied().filter(|k| k.applies_to(request)).collect();
        if candidates.is_empty() {
            return None;
        }
        let kind = candidates[self.rng.random_range(0..candidates.len())];
        *self.injected.entry(kind).or_default() += 1;
        Some(kind)
    }
}
