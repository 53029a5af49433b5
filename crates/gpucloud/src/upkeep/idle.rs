//! Idle pods: a [`crate::ReapPolicy`] rule that reaps a pod whose GPUs stayed below a
//! utilization threshold for a whole window.
//!
//! - **Where utilization comes from**: RunPod reports every running pod's per-GPU utilization
//!   (`runtime.gpus[].util`) in the pod list the sweep reads anyway, so measuring costs no
//!   request. PrimeIntellect reports none: with `IdleRule::over_ssh` (feature `remote`) the sweep reads it on the
//!   pod (`nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits`, through a
//!   `remote::RemoteSession`); without it, or when that read fails, the pod is *not
//!   measurable* ([`crate::ReapReport::unmeasured`]) and never reaped on this rule.
//! - **A whole window**: the rule remembers, per pod, since when every reading it saw was below
//!   the threshold (all GPUs of the pod below it); one reading at or above it starts the window
//!   again, and so does a pod that could not be measured. A pod is idle once the first reading of
//!   an unbroken run is `window` old. Readings are taken at each sweep, so run the reaper on a
//!   schedule (`gpucloud reap --every 60s`) and keep one policy (its clones share what it saw):
//!   the first sweep only starts watching. Utilization between two sweeps is not seen.
//! - **Which pods**: only pods gpucloud launched (a launch tag in the name) unless the policy's
//!   prefix selects others, as for leases. Pods that are not running are not judged.
//! - **Clusters** are judged by all their nodes ([`IdleRule`]'s cluster readings): a cluster
//!   is idle only when every node is, for the whole window, and is then deleted as one
//!   ([`crate::ReapReport::reaped_clusters`]); one busy node keeps the whole cluster.
//! - **Never work in progress**: a pod is not judged until [`IdleRule::grace`] has passed since
//!   it started (RunPod's `startedAt`, the create on PrimeIntellect): image pulls, installs and
//!   data downloads read 0% and are not idleness. A pod launched with
//!   [`crate::LaunchRequest::idle_exempt`] is never judged: its launch tag carries the mark
//!   ([`crate::model::lease::new_idle_exempt_launch_tag`]), so every reaper on any machine sees it
//!   in the pod list. `gpucloud run` marks its job's pod so (its sync, setup and downloads use no
//!   GPU); `up --no-idle-reap` does on request. Such pods still end at their lease.

use crate::model::{Pod, PodId, PodStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// GPU utilization below `below_percent` on every GPU for a whole `window` makes a pod idle.
#[derive(Debug, Clone)]
pub struct IdleRule {
    /// The threshold, percent (1-100): a reading under it is idle.
    pub below_percent: u8,
    /// How long every reading must stay under it.
    pub window: Duration,
    /// How long after a pod starts before it is judged at all ([`DEFAULT_IDLE_GRACE`]).
    pub grace: Duration,
    /// Measure pods whose provider reports no utilization over SSH with these options.
    #[cfg(all(unix, feature = "remote"))]
    pub over_ssh: Option<crate::remote::SessionOptions>,
    /// Since when each watched pod has read idle without a break; shared by clones.
    idle_since: Arc<Mutex<BTreeMap<PodId, DateTime<Utc>>>>,
    /// The same for clusters, judged by all their nodes; shared by clones.
    cluster_idle_since: Arc<Mutex<BTreeMap<crate::model::cluster::ClusterId, DateTime<Utc>>>>,
}

/// How long after its start a pod is left to set up before the idle rule judges it: image
/// pulls, package installs and dataset downloads read 0% GPU for minutes.
pub const DEFAULT_IDLE_GRACE: Duration = Duration::from_secs(15 * 60);

/// What the rule makes of a pod at one sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Not judged (not a candidate, not running, exempt, or still in its grace after start).
    Skipped,
    /// No utilization reported.
    Unmeasured,
    /// Busy, or idle for less than the window.
    Watching,
    /// Idle since this time, for the whole window.
    Idle(DateTime<Utc>),
}

impl IdleRule {
    /// Idle below `below_percent` for `window`, judged from [`DEFAULT_IDLE_GRACE`] after a
    /// pod's start.
    pub fn new(below_percent: u8, window: Duration) -> Self {
        Self {
            below_percent,
            window,
            grace: DEFAULT_IDLE_GRACE,
            #[cfg(all(unix, feature = "remote"))]
            over_ssh: None,
            idle_since: Arc::default(),
            cluster_idle_since: Arc::default(),
        }
    }

    /// Judges a pod only once `grace` has passed since it started.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether `pod` is past its grace at `now`: started (or, unknown, created) at least
    /// [`IdleRule::grace`] ago. A pod with neither time is not judged.
    pub(crate) fn past_grace(&self, pod: &Pod, now: DateTime<Utc>) -> bool {
        pod.started_at.or(pod.created_at).is_some_and(|start| (now - start).to_std().is_ok_and(|up| up >= self.grace))
    }

    /// Also measures pods whose provider reports no utilization (PrimeIntellect) over SSH.
    #[cfg(all(unix, feature = "remote"))]
    pub fn over_ssh(mut self, options: crate::remote::SessionOptions) -> Self {
        self.over_ssh = Some(options);
        self
    }

    /// Fills in, over SSH, the utilization of running candidates whose provider reports none
    /// (when [`IdleRule::over_ssh`] is set); a pod that cannot be read stays unmeasured.
    pub(crate) async fn measure(&self, pods: &mut [Pod], candidate: impl Fn(&Pod) -> bool) {
        #[cfg(all(unix, feature = "remote"))]
        if let Some(options) = &self.over_ssh {
            use futures::StreamExt as _;
            let wanted: Vec<usize> = (0..pods.len())
                .filter(|&i| {
                    let pod = &pods[i];
                    candidate(pod)
                        && !pod.idle_exempt()
                        && self.past_grace(pod, Utc::now())
                        && pod.status == PodStatus::Running
                        && pod.gpu_utilization.is_none()
                })
                .collect();
            let readings: Vec<(usize, Option<Vec<u8>>)> = futures::stream::iter(wanted)
                .map(|i| {
                    let pod = pods[i].clone();
                    async move {
                        let read = async {
                            let session = crate::remote::RemoteSession::connect(&pod, options).await?;
                            let utilization = session.gpu_utilization().await;
                            let _ = session.close().await;
                            utilization
                        };
                        match read.await {
                            Ok(utilization) => (i, Some(utilization)),
                            Err(error) => {
                                tracing::warn!(pod = %pod.id, %error, "GPU utilization could not be read over SSH");
                                (i, None)
                            }
                        }
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
            for (i, utilization) in readings {
                pods[i].gpu_utilization = utilization;
            }
        }
        #[cfg(not(all(unix, feature = "remote")))]
        let _ = (pods, candidate);
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        if !(1..=100).contains(&self.below_percent) {
            return Err(crate::Error::invalid(
                "idle_below_percent",
                format!("{} is outside 1-100", self.below_percent),
            ));
        }
        if self.window.is_zero() {
            return Err(crate::Error::invalid("idle_window", "must be longer than zero"));
        }
        Ok(())
    }

    fn below(&self, utilization: &[u8]) -> bool {
        !utilization.is_empty() && utilization.iter().all(|u| *u < self.below_percent)
    }

    /// Records this sweep's readings of `pods` (the candidates among them) and forgets pods no
    /// longer listed; returns each listed pod's reading.
    pub(crate) fn observe(
        &self,
        pods: &[Pod],
        candidate: impl Fn(&Pod) -> bool,
        now: DateTime<Utc>,
    ) -> BTreeMap<PodId, Reading> {
        let mut idle_since = self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        idle_since.retain(|id, _| pods.iter().any(|p| &p.id == id));
        let mut readings = BTreeMap::new();
        for pod in pods {
            let judged = candidate(pod) && !pod.idle_exempt() && self.past_grace(pod, now);
            let reading = if !judged || pod.status != PodStatus::Running {
                idle_since.remove(&pod.id);
                Reading::Skipped
            } else {
                match pod.gpu_utilization.as_deref() {
                    None => {
                        idle_since.remove(&pod.id);
                        Reading::Unmeasured
                    }
                    Some(utilization) if self.below(utilization) => {
                        let since = *idle_since.entry(pod.id.clone()).or_insert(now);
                        let long_enough = (now - since).to_std().is_ok_and(|idle| idle >= self.window);
                        if long_enough { Reading::Idle(since) } else { Reading::Watching }
                    }
                    Some(_) => {
                        idle_since.remove(&pod.id);
                        Reading::Watching
                    }
                }
            };
            readings.insert(pod.id.clone(), reading);
        }
        readings
    }

    /// Records this sweep's reading of every cluster in `clusters` and forgets clusters no longer
    /// listed: a cluster is judged by **all** its nodes (every node running, past its grace,
    /// and every GPU of every node under the threshold); one busy or unmeasured node starts its
    /// window again. Only clusters gpucloud launched (a launch tag that is not idle-exempt), or
    /// whose name the policy's prefix selects (`prefixed`).
    pub(crate) fn observe_clusters(
        &self,
        clusters: &[crate::model::cluster::Cluster],
        prefixed: impl Fn(&str) -> bool,
        now: DateTime<Utc>,
    ) -> BTreeMap<crate::model::cluster::ClusterId, Reading> {
        let mut idle_since = self.cluster_idle_since.lock().unwrap_or_else(|e| e.into_inner());
        idle_since.retain(|id, _| clusters.iter().any(|c| &c.id == id));
        let mut readings = BTreeMap::new();
        for cluster in clusters {
            let candidate = match cluster.launch_tag.as_deref() {
                Some(tag) => !crate::model::lease::is_idle_exempt_tag(tag),
                None => prefixed(&cluster.name),
            };
            let judged = candidate
                && !cluster.nodes.is_empty()
                && cluster.nodes.iter().all(|n| n.pod.status == PodStatus::Running && self.past_grace(&n.pod, now));
            let reading = if !judged {
                idle_since.remove(&cluster.id);
                Reading::Skipped
            } else if cluster.nodes.iter().any(|n| n.pod.gpu_utilization.is_none()) {
                idle_since.remove(&cluster.id);
                Reading::Unmeasured
            } else if cluster.nodes.iter().all(|n| n.pod.gpu_utilization.as_deref().is_some_and(|u| self.below(u))) {
                let since = *idle_since.entry(cluster.id.clone()).or_insert(now);
                let long_enough = (now - since).to_std().is_ok_and(|idle| idle >= self.window);
                if long_enough { Reading::Idle(since) } else { Reading::Watching }
            } else {
                idle_since.remove(&cluster.id);
                Reading::Watching
            };
            readings.insert(cluster.id.clone(), reading);
        }
        readings
    }

    /// Whether a fresh read of `pod` still shows it idle (the window was judged at the sweep):
    /// running, not exempt, not restarted within its grace, every GPU under the threshold.
    pub(crate) fn still_idle(&self, pod: &Pod) -> bool {
        pod.status == PodStatus::Running
            && !pod.idle_exempt()
            && self.past_grace(pod, Utc::now())
            && pod.gpu_utilization.as_deref().is_some_and(|u| self.below(u))
    }
}
