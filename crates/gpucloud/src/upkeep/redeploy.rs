//! Starting a stopped pod, or, when its host has no free GPU, replacing it.
//!
//! RunPod documents that a stopped pod resumes on the host it ran on, and that the start fails
//! when that host's GPUs are taken ([`Error::HostFull`]). [`crate::Fleet::start_or_redeploy`]
//! then launches a new pod from the stopped one's configuration: the same image, GPU type and
//! count, environment, command and entrypoint, the same network volume (so the new pod lands in
//! the volume's data center), its remaining lease, through [`crate::Fleet::launch`] (failover,
//! the readiness wait, cleanup of anything not handed back). Once the new pod is ready the
//! stopped one is terminated and the termination confirmed, **unless it has a pod-local
//! persistent volume**: that disk's data would go with it, and a new pod does not get it, so the
//! stopped pod is kept and the outcome says why ([`Replaced::KeptStopped`]).
//!
//! Only RunPod pods can be stopped; a PrimeIntellect id is [`Error::Unsupported`].

use crate::model::error::{Error, Result};
use crate::model::{Pod, PodId, Provider};
use crate::{Fleet, LaunchRequest};
use std::time::Duration;

/// How long the stopped pod's termination may take to be confirmed.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(180);

/// What [`Fleet::start_or_redeploy`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartOutcome {
    /// The pod started on its own host.
    Started,
    /// Its host was full: a new pod from its configuration is running.
    Redeployed {
        /// The new pod, ready.
        pod: Box<Pod>,
        /// The stopped pod it replaces, and what became of it.
        replaced: Replaced,
    },
}

/// What became of the stopped pod after a redeploy.
#[derive(Debug)]
#[non_exhaustive]
pub enum Replaced {
    /// Terminated, and the termination confirmed.
    Terminated(PodId),
    /// Kept, stopped (it bills for its disk): why.
    KeptStopped {
        /// The stopped pod.
        id: PodId,
        /// Why it was not terminated.
        reason: String,
    },
    /// Its termination failed or was not confirmed: it may still bill for its disk.
    TerminateFailed {
        /// The stopped pod.
        id: PodId,
        /// What went wrong.
        error: Error,
    },
}

/// The stopped pod's configuration, as a launch request; and whether it has a pod-local volume.
#[cfg(feature = "runpod")]
fn relaunch_request(pod: &Pod) -> Result<(LaunchRequest, bool)> {
    #[allow(unreachable_patterns, reason = "only one arm when PrimeIntellect is not compiled in")]
    let raw = match &pod.raw {
        crate::model::PodRecord::RunPod(raw) => raw,
        _ => return Err(Error::Unsupported { provider: pod.provider, operation: "redeploy" }),
    };
    let gpu = raw.gpu.as_ref().ok_or_else(|| Error::invalid("pod", format!("{} has no GPU to redeploy", pod.id)))?;
    let count = u32::try_from(gpu.count.get()).unwrap_or(u32::MAX);
    let base = crate::model::lease::parse(&pod.name).map_or(pod.name.as_str(), |parts| parts.base);
    let mut request = LaunchRequest::new(gpu.id.clone(), count, base);
    request.image = Some(raw.image.clone());
    request.env = raw.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    request.volume_ids = raw.mounts.network.iter().map(|m| m.volume_id.clone()).collect();
    request.command = (!raw.cmd.is_empty()).then(|| raw.cmd.clone());
    request.entrypoint = (!raw.entrypoint.is_empty()).then(|| raw.entrypoint.clone());
    // The rest of its lease; one that has run out is not renewed by a redeploy.
    if let Some(expiry) = pod.lease_expires_at {
        let left = (expiry - chrono::Utc::now()).to_std().unwrap_or_default();
        if left < crate::model::lease::MIN_TTL {
            return Err(Error::invalid(
                "pod",
                format!("{}'s lease has expired: redeploying it would outlive it", pod.id),
            ));
        }
        request.ttl = Some(left);
    }
    Ok((request, raw.mounts.persistent.is_some()))
}

#[cfg(not(feature = "runpod"))]
fn relaunch_request(pod: &Pod) -> Result<(LaunchRequest, bool)> {
    Err(Error::Unsupported { provider: pod.provider, operation: "redeploy" })
}

impl Fleet {
    /// Starts the stopped pod `id`; if its host has no free GPU ([`Error::HostFull`]), launches
    /// a replacement from its configuration, waits until it is ready, and terminates the
    /// stopped pod (see [`crate::upkeep::redeploy`] for what is carried over and when the stopped pod
    /// is kept). Any other error of the start is returned as it is, and nothing is launched.
    pub async fn start_or_redeploy(&self, id: &PodId) -> Result<StartOutcome> {
        if id.provider() != Provider::RunPod {
            return Err(Error::Unsupported { provider: id.provider(), operation: "start" });
        }
        let provisioner = self.provisioner(id.provider())?.clone();
        // Checked against the burn cap like any start (Fleet::start).
        match self.start(id).await {
            Ok(()) => return Ok(StartOutcome::Started),
            Err(Error::HostFull { message, .. }) => {
                tracing::warn!(pod = %id, %message, "the stopped pod's host is full: redeploying");
            }
            Err(e) => return Err(e),
        }
        let stopped = provisioner.get(id).await?;
        let (request, pod_volume) = relaunch_request(&stopped)?;
        let pod = self.only(&[id.provider()]).launch(&request).await?;
        let replaced = if pod_volume {
            Replaced::KeptStopped {
                id: id.clone(),
                reason:
                    "it has a pod volume, whose data the new pod does not have: copy what you need, then terminate it"
                        .into(),
            }
        } else {
            let deadline = tokio::time::Instant::now() + TERMINATE_TIMEOUT;
            match provisioner.terminate_and_confirm(id, deadline).await {
                Ok(()) => Replaced::Terminated(id.clone()),
                Err(error) => Replaced::TerminateFailed { id: id.clone(), error },
            }
        };
        Ok(StartOutcome::Redeployed { pod: Box::new(pod), replaced })
    }
}
