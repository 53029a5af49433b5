//! The reaper: terminates pods whose lease has expired, so no pod outlives its purpose for long,
//! even when the process that launched it was killed.
//!
//! [`Fleet::reap`](crate::Fleet::reap) lists every provider's pods, and terminates (and confirms)
//!
//! - every pod whose [lease](crate::model::lease) has expired, and
//! - if the policy names a prefix, every pod whose name starts with it and that is older than the
//!   policy's age — a sweep for pods launched without a lease, by tools that name them alike;
//! - with an [idle rule](crate::upkeep::idle), every pod gpucloud launched (or the prefix names) whose
//!   GPUs stayed under the threshold for the whole window.
//!
//! It never touches any other pod: one without a gpucloud lease, or with a lease still running,
//! is left alone unless the caller's own prefix rule matches it. **A locked pod is never
//! terminated by any rule**: RunPod's `locked` is "Whether the pod is locked (prevents stopping or
//! resetting)", the owner's explicit hands-off; it is reported in [`ReapReport::skipped`] with the
//! rule that matched and why it was left. The idle rule also leaves pods in their grace after
//! start and pods launched exempt from it ([`crate::upkeep::idle`]). Each candidate is read once more
//! just before it is terminated, so a lease extended meanwhile is honoured. A pod that cannot be
//! terminated is reported and the sweep goes on; a provider whose pods cannot be listed is
//! reported and the other providers are still swept. `dry_run` reports what would be terminated
//! and touches nothing.
//!
//! **Clusters** (RunPod `/v2/clusters`) are reaped as one: a cluster whose lease (stamped in its
//! name by [`crate::Fleet::launch_cluster`]) has expired, or that the prefix rule matches, is
//! deleted with every member and the deletion confirmed ([`ReapReport::reaped_clusters`]); its
//! members are never terminated one by one (RunPod answers `409` to that). The idle rule judges a
//! cluster by all its nodes ([`crate::upkeep::idle`]).
//!
//! Run it on a schedule (`gpucloud reap --every 60s`, a systemd timer, a Kubernetes CronJob):
//! the pod list is the only state, so any machine with the API key can run it.

use crate::model::error::{Error, Result};
use crate::model::{Pod, PodId, PodStatus, Provider};
use crate::providers::provisioner::Provisioner;
use crate::upkeep::idle::Reading;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How many terminations a sweep runs at once.
const CONCURRENT_TERMINATIONS: usize = 8;

/// Which pods [`Fleet::reap`](crate::Fleet::reap) terminates. See the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct ReapPolicy {
    /// Also pods whose name starts with this prefix and that are older than `older_than`.
    pub prefix: Option<String>,
    /// The age for `prefix`; both are given or neither.
    pub older_than: Option<Duration>,
    /// Only report what would be terminated.
    pub dry_run: bool,
    /// Also pods idle for a whole window ([`crate::upkeep::idle`]); keep one policy across sweeps.
    pub idle: Option<crate::upkeep::idle::IdleRule>,
    /// Awaited with each pod just before it is terminated (never in a dry run): what must know
    /// first that the pod's end is on purpose (the CLI closes the pod's job record, so that no
    /// recoverer takes the end for a spot interruption and relaunches the job). `Err` leaves
    /// the pod alone this sweep, reported in [`ReapReport::skipped`] with the reason.
    pub before_terminate: Option<BeforeTerminate>,
}

/// A hook of [`ReapPolicy::before_terminate`]: `Ok` to go on with the termination, `Err(why)`
/// to leave the pod for the next sweep.
#[derive(Clone)]
#[allow(clippy::type_complexity)] // One hook type; naming its parts would only add aliases.
pub struct BeforeTerminate(
    pub  std::sync::Arc<
        dyn Fn(PodId) -> futures::future::BoxFuture<'static, std::result::Result<(), String>> + Send + Sync,
    >,
);

impl std::fmt::Debug for BeforeTerminate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeTerminate(..)")
    }
}

impl ReapPolicy {
    /// Pods whose lease has expired, and nothing else.
    pub fn expired_leases() -> Self {
        Self::default()
    }

    /// Also pods named `prefix…` that are older than `age`.
    pub fn with_prefix_older_than(mut self, prefix: impl Into<String>, age: Duration) -> Self {
        self.prefix = Some(prefix.into());
        self.older_than = Some(age);
        self
    }

    /// Also pods whose GPUs stay under `below_percent` for `window` ([`crate::upkeep::idle`]).
    pub fn with_idle(mut self, below_percent: u8, window: Duration) -> Self {
        self.idle = Some(crate::upkeep::idle::IdleRule::new(below_percent, window));
        self
    }

    /// Report only; terminate nothing.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match (&self.prefix, self.older_than) {
            (Some(prefix), Some(_)) if prefix.is_empty() => {
                Err(Error::invalid("prefix", "must not be empty: an empty prefix matches every pod"))
            }
            (Some(_), None) => Err(Error::invalid("older_than", "is required with prefix")),
            (None, Some(_)) => Err(Error::invalid("prefix", "is required with older_than")),
            _ => Ok(()),
        }?;
        self.idle.as_ref().map_or(Ok(()), crate::upkeep::idle::IdleRule::validate)
    }

    /// Whether the idle rule may judge `pod`: gpucloud launched it, or the prefix names it.
    fn idle_candidate(&self, pod: &Pod) -> bool {
        !pod.idle_exempt()
            && (pod.launch_tag.is_some() || self.prefix.as_deref().is_some_and(|prefix| pod.name.starts_with(prefix)))
    }

    /// Why `cluster` is to be deleted at `now`, if it is: its lease expired, or the prefix rule
    /// matches its name and age.
    pub fn cluster_reason(&self, cluster: &crate::model::cluster::Cluster, now: DateTime<Utc>) -> Option<ReapReason> {
        if let Some(expired_at) = cluster.lease_expires_at.filter(|expiry| *expiry <= now) {
            return Some(ReapReason::LeaseExpired { expired_at });
        }
        let (prefix, age) = (self.prefix.as_deref()?, self.older_than?);
        let created_at = cluster.created_at?;
        let old_enough = now.signed_duration_since(created_at).to_std().is_ok_and(|lived| lived >= age);
        (cluster.name.starts_with(prefix) && old_enough).then_some(ReapReason::PrefixOlderThan { created_at })
    }

    /// Why `pod` is to be reaped at `now`, if it is.
    pub fn reason(&self, pod: &Pod, now: DateTime<Utc>) -> Option<ReapReason> {
        if matches!(pod.status, PodStatus::Terminated | PodStatus::Terminating) {
            return None;
        }
        if let Some(expired_at) = pod.lease_expires_at.filter(|expiry| *expiry <= now) {
            return Some(ReapReason::LeaseExpired { expired_at });
        }
        let (prefix, age) = (self.prefix.as_deref()?, self.older_than?);
        let created_at = pod.created_at?;
        let old_enough = now.signed_duration_since(created_at).to_std().is_ok_and(|lived| lived >= age);
        (pod.name.starts_with(prefix) && old_enough).then_some(ReapReason::PrefixOlderThan { created_at })
    }
}

/// Why a pod was reaped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReapReason {
    /// Its lease expired at this time.
    LeaseExpired {
        /// The lease's expiry.
        expired_at: DateTime<Utc>,
    },
    /// Its name matched the policy's prefix and it was created at this time, longer ago than the
    /// policy's age.
    PrefixOlderThan {
        /// Its creation time.
        created_at: DateTime<Utc>,
    },
    /// Every GPU read under `below_percent` at every sweep since this time, for the whole
    /// window of the policy's idle rule.
    Idle {
        /// The first idle reading of the run.
        since: DateTime<Utc>,
        /// The rule's threshold, percent.
        below_percent: u8,
    },
}

/// A pod the reaper terminated (or, in a dry run, would terminate).
#[derive(Debug, Clone)]
pub struct ReapedPod {
    /// The pod.
    pub id: PodId,
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: ReapReason,
}

/// What a failed part of a sweep was about.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReapFailure {
    /// The provider's pods could not be listed; none of them were examined.
    List {
        /// Which cloud.
        provider: Provider,
        /// Why.
        error: Error,
    },
    /// The pod could not be terminated, or its termination not confirmed.
    Terminate {
        /// The pod.
        id: PodId,
        /// Why.
        error: Error,
    },
    /// The cluster could not be deleted, or its deletion not confirmed.
    DeleteCluster {
        /// The cluster.
        id: crate::model::cluster::ClusterId,
        /// Why.
        error: Error,
    },
}

impl ReapFailure {
    /// Which cloud it happened on.
    pub fn provider(&self) -> Provider {
        match self {
            ReapFailure::List { provider, .. } => *provider,
            ReapFailure::Terminate { id, .. } => id.provider(),
            ReapFailure::DeleteCluster { id, .. } => id.provider(),
        }
    }

    /// The pod concerned; `None` when the provider's pods could not be listed, or for a cluster.
    pub fn pod(&self) -> Option<&PodId> {
        match self {
            ReapFailure::List { .. } | ReapFailure::DeleteCluster { .. } => None,
            ReapFailure::Terminate { id, .. } => Some(id),
        }
    }

    /// Why it failed.
    pub fn error(&self) -> &Error {
        match self {
            ReapFailure::List { error, .. }
            | ReapFailure::Terminate { error, .. }
            | ReapFailure::DeleteCluster { error, .. } => error,
        }
    }

    /// The error, by value.
    pub fn into_error(self) -> Error {
        match self {
            ReapFailure::List { error, .. }
            | ReapFailure::Terminate { error, .. }
            | ReapFailure::DeleteCluster { error, .. } => error,
        }
    }
}

/// The outcome of one sweep.
#[derive(Debug, Default)]
pub struct ReapReport {
    /// Whether this was a dry run (nothing was touched).
    pub dry_run: bool,
    /// Pods listed.
    pub examined: usize,
    /// Pods terminated and confirmed gone (dry run: that would be terminated).
    pub reaped: Vec<ReapedPod>,
    /// What failed; the rest of the sweep went on.
    pub failures: Vec<ReapFailure>,
    /// Running pods the idle rule could not judge: their provider reports no utilization
    /// (PrimeIntellect). They are never reaped as idle.
    pub unmeasured: Vec<PodId>,
    /// Pods a rule matched that were left alone anyway, with why (a locked pod).
    pub skipped: Vec<SkippedPod>,
    /// Clusters listed.
    pub examined_clusters: usize,
    /// Clusters deleted with every member, the deletion confirmed (dry run: that would be).
    pub reaped_clusters: Vec<ReapedCluster>,
}

/// A cluster the reaper deleted (or, in a dry run, would delete).
#[derive(Debug, Clone)]
pub struct ReapedCluster {
    /// The cluster.
    pub id: crate::model::cluster::ClusterId,
    /// Its name.
    pub name: String,
    /// How many member pods it had.
    pub nodes: usize,
    /// Why.
    pub reason: ReapReason,
}

/// A pod a rule matched that the reaper left alone.
#[derive(Debug, Clone)]
pub struct SkippedPod {
    /// The pod.
    pub id: PodId,
    /// Its name.
    pub name: String,
    /// The rule that matched.
    pub reason: ReapReason,
    /// Why it was left.
    pub why: String,
}

/// Why a locked pod is left: RunPod's own words for the flag.
const LOCKED: &str = "locked on RunPod (\"prevents stopping or resetting\"): the reaper never stops or terminates it; unlock it to let it";

/// A pod and the rule it matched.
type Matched = (Pod, ReapReason);

/// What became of one candidate.
enum Outcome {
    Reaped(ReapedPod),
    Failed(ReapFailure),
    Skipped(SkippedPod),
}

impl ReapReport {
    /// Whether every provider was listed and every chosen pod terminated.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One sweep over `provisioners`. See [`crate::Fleet::reap`].
pub(crate) async fn sweep(
    provisioners: &[Arc<dyn Provisioner>],
    policy: &ReapPolicy,
    mut pods: Vec<Pod>,
    list_failures: Vec<(Provider, Error)>,
    confirm_timeout: Duration,
) -> ReapReport {
    let now = Utc::now();
    let mut report = ReapReport {
        dry_run: policy.dry_run,
        examined: pods.len(),
        failures: list_failures.into_iter().map(|(provider, error)| ReapFailure::List { provider, error }).collect(),
        ..ReapReport::default()
    };
    if let Some(rule) = &policy.idle {
        rule.measure(&mut pods, |pod| policy.idle_candidate(pod)).await;
    }
    let readings = policy.idle.as_ref().map(|rule| rule.observe(&pods, |pod| policy.idle_candidate(pod), now));
    let idle_reason = |pod: &Pod| {
        let rule = policy.idle.as_ref()?;
        match readings.as_ref()?.get(&pod.id)? {
            Reading::Idle(since) => Some(ReapReason::Idle { since: *since, below_percent: rule.below_percent }),
            _ => None,
        }
    };
    if let Some(readings) = &readings {
        report.unmeasured =
            readings.iter().filter(|(_, r)| **r == Reading::Unmeasured).map(|(id, _)| id.clone()).collect();
    }
    let (locked, candidates): (Vec<Matched>, Vec<Matched>) = pods
        .into_iter()
        .filter_map(|pod| policy.reason(&pod, now).or_else(|| idle_reason(&pod)).map(|reason| (pod, reason)))
        .partition(|(pod, _)| pod.locked());
    report.skipped = locked
        .into_iter()
        .map(|(pod, reason)| SkippedPod { id: pod.id, name: pod.name, reason, why: LOCKED.into() })
        .collect();
    if policy.dry_run {
        report.reaped =
            candidates.into_iter().map(|(pod, reason)| ReapedPod { id: pod.id, name: pod.name, reason }).collect();
        return report;
    }
    let deadline = Instant::now() + confirm_timeout;
    let outcomes = futures::stream::iter(candidates)
        .map(|(pod, reason)| async move {
            let provisioner = provisioners.iter().find(|p| p.provider() == pod.provider)?;
            reap_one(provisioner.as_ref(), policy, pod, reason, deadline).await
        })
        .buffer_unordered(CONCURRENT_TERMINATIONS)
        .collect::<Vec<_>>()
        .await;
    for outcome in outcomes.into_iter().flatten() {
        match outcome {
            Outcome::Reaped(reaped) => report.reaped.push(reaped),
            Outcome::Failed(failure) => report.failures.push(failure),
            Outcome::Skipped(skipped) => report.skipped.push(skipped),
        }
    }
    report.reaped.sort_by(|a, b| a.id.cmp(&b.id));
    report
}

/// Re-reads `pod` (its lease may have been extended since the list), then terminates it if the
/// policy still applies. `None`: it no longer does.
async fn reap_one(
    provisioner: &dyn Provisioner,
    policy: &ReapPolicy,
    pod: Pod,
    reason: ReapReason,
    deadline: Instant,
) -> Option<Outcome> {
    let reason = match provisioner.get(&pod.id).await {
        // Locked since the list: hands off, whatever the rule.
        Ok(fresh) if fresh.locked() => {
            return Some(Outcome::Skipped(SkippedPod { id: pod.id, name: pod.name, reason, why: LOCKED.into() }));
        }
        // An idle pod that got busy since the sweep's reading is left alone.
        Ok(mut fresh) => match reason {
            ReapReason::Idle { .. } => {
                // Utilization read over SSH moments ago is in no provider's record.
                if fresh.gpu_utilization.is_none() {
                    fresh.gpu_utilization = pod.gpu_utilization.clone();
                }
                if !policy.idle.as_ref().is_some_and(|rule| rule.still_idle(&fresh)) {
                    return None;
                }
                reason
            }
            _ => policy.reason(&fresh, Utc::now())?,
        },
        Err(e) if e.is_not_found() => return None,
        // Idleness is judged on a fresh reading only; the next sweep tries again.
        Err(_) if matches!(reason, ReapReason::Idle { .. }) => return None,
        // The list said its lease is due; a failed re-read does not make it less so.
        Err(_) => reason,
    };
    tracing::warn!(pod = %pod.id, name = %pod.name, ?reason, "reaping");
    if let Some(hook) = &policy.before_terminate
        && let Err(why) = (hook.0)(pod.id.clone()).await
    {
        return Some(Outcome::Skipped(SkippedPod { id: pod.id, name: pod.name, reason, why }));
    }
    Some(match provisioner.terminate_and_confirm(&pod.id, deadline).await {
        Ok(()) => Outcome::Reaped(ReapedPod { id: pod.id, name: pod.name, reason }),
        Err(error) => {
            tracing::error!(pod = %pod.id, %error, "reaper could not confirm termination");
            Outcome::Failed(ReapFailure::Terminate { id: pod.id, error })
        }
    })
}

impl crate::Fleet {
    /// One sweep of the reaper over every provider: terminates, and confirms, every pod whose
    /// lease has expired, plus the pods the policy's prefix rule matches. Failures are in the
    /// report, not fatal; `Err` only for an invalid policy. See [`crate::upkeep::reap`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = gpucloud_emulator::Emulator::start(Default::default()).await?;
    /// # let key = gpucloud::SecretString::from(emulator.api_key().to_string());
    /// # let fleet = gpucloud::Fleet::new().with(gpucloud::RunPod::new(key, Some(&emulator.base_url()))?);
    /// use gpucloud::ReapPolicy;
    /// use std::time::Duration;
    /// let policy = ReapPolicy::expired_leases().with_prefix_older_than("ci-", Duration::from_secs(2 * 3600));
    /// let report = fleet.reap(&policy).await?;
    /// println!("examined {}, reaped {}", report.examined, report.reaped.len());
    /// # assert!(report.is_clean());
    /// # Ok(()) }
    /// ```
    pub async fn reap(&self, policy: &crate::ReapPolicy) -> Result<crate::ReapReport> {
        policy.validate()?;
        let ((mut pods, list_failures), clusters) = tokio::join!(self.list(), self.clusters());
        // A multi-node pod (PrimeIntellect) is judged as the cluster it is: by all its nodes.
        pods.retain(|pod| !clusters.0.iter().any(|c| c.single_pod.as_ref() == Some(&pod.id)));
        let mut report = sweep(self.provisioners(), policy, pods, list_failures, self.cleanup_timeout()).await;
        self.reap_clusters(policy, clusters, &mut report).await;
        Ok(report)
    }

    /// The clusters' part of a sweep: each one the policy matches is read again (a renamed
    /// lease counts), then deleted with its members and the deletion confirmed.
    async fn reap_clusters(
        &self,
        policy: &crate::ReapPolicy,
        (clusters, failures): (Vec<crate::model::cluster::Cluster>, Vec<(crate::Provider, Error)>),
        report: &mut crate::ReapReport,
    ) {
        report.examined_clusters = clusters.len();
        // A provider whose pods could not be listed is reported once.
        for (provider, error) in failures {
            let known =
                report.failures.iter().any(|f| matches!(f, ReapFailure::List { provider: p, .. } if *p == provider));
            if !known {
                report.failures.push(ReapFailure::List { provider, error });
            }
        }
        let deadline = Instant::now() + self.cleanup_timeout();
        let now = Utc::now();
        let prefixed = |name: &str| policy.prefix.as_deref().is_some_and(|p| name.starts_with(p));
        let idle = policy.idle.as_ref().map(|rule| (rule, rule.observe_clusters(&clusters, prefixed, now)));
        let idle_reason = |cluster: &crate::model::cluster::Cluster| {
            let (rule, readings) = idle.as_ref()?;
            match readings.get(&cluster.id)? {
                Reading::Idle(since) => Some(ReapReason::Idle { since: *since, below_percent: rule.below_percent }),
                _ => None,
            }
        };
        for cluster in clusters.iter().cloned() {
            let Some(reason) = policy.cluster_reason(&cluster, now).or_else(|| idle_reason(&cluster)) else { continue };
            let idle_only = matches!(reason, ReapReason::Idle { .. });
            let Ok(provisioner) = self.provisioner(cluster.provider) else { continue };
            let reaped = ReapedCluster {
                id: cluster.id.clone(),
                name: cluster.name.clone(),
                nodes: cluster.nodes.len(),
                reason,
            };
            if policy.dry_run {
                report.reaped_clusters.push(reaped);
                continue;
            }
            match provisioner.cluster_summary(&cluster.id).await {
                Err(e) if e.is_not_found() => continue,
                // Idleness is judged on this sweep's reading of every node; a lease re-read.
                Ok(fresh) if !idle_only && policy.cluster_reason(&fresh, Utc::now()).is_none() => continue,
                _ => {}
            }
            tracing::warn!(cluster = %cluster.id, name = %cluster.name, "reaping cluster");
            let members: Vec<PodId> = cluster.member_ids();
            match provisioner.delete_cluster_and_confirm(&cluster.id, &members, deadline).await {
                Ok(()) => report.reaped_clusters.push(reaped),
                Err(error) => report.failures.push(ReapFailure::DeleteCluster { id: cluster.id, error }),
            }
        }
    }
}

#[cfg(all(test, feature = "runpod"))]
mod tests {
    use super::*;
    use serde_json::json;

    /// A RunPod pod as the document's example has it, named `name`, running, idle.
    fn runpod_pod(id: &str, name: &str, locked: bool) -> Pod {
        let record = json!({
            "id": id, "name": name, "image": "runpod/pytorch:1.0.2", "args": "", "disk": 50,
            "ports": ["22/tcp"], "env": {}, "registry": null, "status": "RUNNING", "actions": ["stop", "terminate"],
            "mounts": {}, "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1, "vcpuCount": 16, "memory": 64},
            "cloud": "SECURE", "dataCenterId": "US-KS-2", "cudaVersion": "12.8",
            "ssh": {"proxy": null, "direct": null}, "template": null, "cost": 0.44, "locked": locked,
            "globalNetworking": {"enabled": false}, "runtime": {"uptime": 3600, "gpus": [{"util": 0}]},
            "createdAt": "2026-06-01T12:00:00Z", "startedAt": "2026-06-01T12:02:00Z"
        });
        crate::providers::runpod::to_pod(serde_json::from_value(record).expect("the document's example decodes"))
    }

    #[tokio::test]
    async fn a_locked_pod_is_never_reaped_and_the_report_says_why() {
        // Both leases ran out in 2026-06; one pod is locked.
        let expired = "job-exp20260601t130000z-gcabcdefghij";
        let pods = vec![runpod_pod("free", expired, false), runpod_pod("held", expired, true)];
        let policy = ReapPolicy::expired_leases().dry_run();
        let report = sweep(&[], &policy, pods, Vec::new(), Duration::from_secs(1)).await;
        assert_eq!(report.reaped.iter().map(|r| r.id.id()).collect::<Vec<_>>(), ["free"]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].id.id(), "held");
        assert!(matches!(report.skipped[0].reason, ReapReason::LeaseExpired { .. }));
        assert!(report.skipped[0].why.contains("locked"), "{}", report.skipped[0].why);
        // The prefix rule and the idle rule leave it too.
        let policy = ReapPolicy::expired_leases().with_prefix_older_than("job", Duration::from_secs(1)).dry_run();
        let report =
            sweep(&[], &policy, vec![runpod_pod("held", "job-old", true)], Vec::new(), Duration::from_secs(1)).await;
        assert!(report.reaped.is_empty() && report.skipped.len() == 1, "{report:?}");
    }

    #[test]
    fn the_idle_rule_waits_out_the_grace_and_never_judges_an_exempt_pod() {
        let rule = crate::upkeep::idle::IdleRule::new(10, Duration::from_secs(60));
        let started = crate::model::time::parse_timestamp("2026-06-01T12:02:00Z").unwrap();
        let mut pod = runpod_pod("p", "job-gcabcdefghij", false);
        assert!(!rule.past_grace(&pod, started + chrono::Duration::minutes(14)));
        assert!(rule.past_grace(&pod, started + chrono::Duration::minutes(15)));
        pod.launch_tag = Some("gckbcdefghij".into());
        assert!(pod.idle_exempt());
        let policy = ReapPolicy::expired_leases().with_idle(10, Duration::from_secs(60));
        assert!(!policy.idle_candidate(&pod), "an exempt pod is not even measured");
    }
}
