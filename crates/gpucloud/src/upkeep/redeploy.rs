//! Starting a stopped pod, or, when its host has no free GPU, replacing it.
//!
//! RunPod documents that a stopped pod resumes on the host it ran on, and that the start fails
//! when that host's GPUs are taken ([`Error::HostFull`]). [`crate::Fleet::start_or_redeploy`]
//! then launches **the same pod elsewhere, or nothing**: the same image, GPU type and count, cloud
//! tier (`SECURE` stays on "Runpod-owned datacenter hardware"), data center (or, when the caller
//! allows it, [`RedeployScope::SameRegion`], any in its region), registry credential (a private
//! image still pulls), ports, container disk size, environment, command and entrypoint, the same
//! network volume at the same mount path, and its remaining lease, through
//! [`crate::Fleet::launch`] (failover, the burn cap, the readiness wait, cleanup of anything not
//! handed back). A `PUBLIC_KEY` in its environment is not copied: RunPod's `startSsh` "injects a
//! `PUBLIC_KEY` environment variable carrying your account's registered SSH public keys, unless
//! the request already sets one", so copying it would carry the old key set forward (a key since
//! removed from the account would still open the new pod); the new pod gets the account's keys
//! of now. When no offer matches all that, nothing is launched and the stopped pod stays. Once the new pod is ready the
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
    /// Kept, stopped (its volume disk still bills): why.
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

/// Where a redeployed pod may land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RedeployScope {
    /// In the stopped pod's data center only.
    #[default]
    SameDataCenter,
    /// Anywhere in its data center's region: its country (`US-KS-2`: the US) or continent
    /// (`EU-RO-1`: Europe), as [`crate::model::region`] reads a data center id's first segment.
    SameRegion,
}

/// The environment variable RunPod injects with the account's SSH keys unless the request sets
/// one (`startSsh`): never copied to a new pod.
#[cfg(feature = "runpod")]
const INJECTED_KEYS_ENV: &str = "PUBLIC_KEY";

/// The stopped pod's configuration, as a launch request; and whether it has a pod-local volume.
#[cfg(feature = "runpod")]
fn relaunch_request(pod: &Pod, scope: RedeployScope) -> Result<(LaunchRequest, bool)> {
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
    request.env =
        raw.env.iter().filter(|(k, _)| *k != INJECTED_KEYS_ENV).map(|(k, v)| (k.clone(), v.clone())).collect();
    // The launch tag of the old pod is the old pod's; the new one gets its own.
    request.env.remove(crate::providers::provisioner::LAUNCH_TAG_ENV);
    request.volume_ids = raw.mounts.network.iter().map(|m| m.volume_id.clone()).collect();
    request.volume_mount_path = raw.mounts.network.first().map(|m| m.path.clone());
    request.query.cloud = Some(raw.cloud.0.clone());
    request.registry.clone_from(&raw.registry);
    request.ports = raw.ports.iter().filter(|p| p.as_str() != "22/tcp").cloned().collect();
    request.disk_gb = u32::try_from(raw.disk.get()).ok();
    request.idle_exempt = pod.idle_exempt();
    let data_center = raw.data_center_id.clone().ok_or_else(|| {
        Error::invalid("pod", format!("{} reports no data center, so a redeploy cannot keep it in place", pod.id))
    })?;
    request.query.regions = vec![match scope {
        RedeployScope::SameDataCenter => data_center,
        RedeployScope::SameRegion => data_center.split('-').next().unwrap_or(&data_center).to_string(),
    }];
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
fn relaunch_request(pod: &Pod, _scope: RedeployScope) -> Result<(LaunchRequest, bool)> {
    Err(Error::Unsupported { provider: pod.provider, operation: "redeploy" })
}

impl Fleet {
    /// Starts the stopped pod `id`; if its host has no free GPU ([`Error::HostFull`]), launches
    /// a replacement from its configuration, waits until it is ready, and terminates the
    /// stopped pod (see [`crate::upkeep::redeploy`] for what is carried over and when the stopped pod
    /// is kept). Any other error of the start is returned as it is, and nothing is launched.
    /// The replacement stays in the stopped pod's data center ([`RedeployScope::SameDataCenter`]).
    pub async fn start_or_redeploy(&self, id: &PodId) -> Result<StartOutcome> {
        self.start_or_redeploy_within(id, RedeployScope::default()).await
    }

    /// [`Fleet::start_or_redeploy`], the replacement placed within `scope`.
    pub async fn start_or_redeploy_within(&self, id: &PodId, scope: RedeployScope) -> Result<StartOutcome> {
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
        let (request, pod_volume) = relaunch_request(&stopped, scope)?;
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

#[cfg(all(test, feature = "runpod"))]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_relaunch_is_the_same_pod_elsewhere() {
        let record = json!({
            "id": "old", "name": "train-gcabcdefghij", "image": "registry.example/private:1", "args": "",
            "disk": 80, "ports": ["22/tcp", "8888/http"],
            "env": {"PUBLIC_KEY": "ssh-ed25519 AAAA removed-key", "GPUCLOUD_LAUNCH_TAG": "gcabcdefghij", "MODEL": "llama"},
            "registry": "cred_123", "status": "EXITED", "actions": ["start", "terminate"],
            "mounts": {"network": [{"volumeId": "vol_1", "path": "/runpod-volume"}]},
            "gpu": {"id": "NVIDIA H100 PCIe", "count": 2, "vcpuCount": 24, "memory": 234},
            "cloud": "SECURE", "dataCenterId": "EU-RO-1", "cudaVersion": "12.8",
            "ssh": {"proxy": null, "direct": null}, "template": null, "cost": 0.0, "locked": false,
            "globalNetworking": {"enabled": false}, "runtime": null,
            "createdAt": "2026-06-01T12:00:00Z", "startedAt": null
        });
        let pod = crate::providers::runpod::to_pod(serde_json::from_value(record).unwrap());
        let (request, pod_volume) = relaunch_request(&pod, RedeployScope::SameDataCenter).unwrap();
        assert!(!pod_volume);
        assert_eq!(request.query.cloud.as_deref(), Some("SECURE"), "Secure stays Secure");
        assert_eq!(request.query.regions, ["EU-RO-1"]);
        assert_eq!(request.registry.as_deref(), Some("cred_123"));
        assert_eq!(request.ports, ["8888/http"]);
        assert_eq!(request.disk_gb, Some(80));
        assert_eq!(request.volume_ids, ["vol_1"]);
        assert_eq!(request.volume_mount_path.as_deref(), Some("/runpod-volume"));
        assert_eq!(request.query.gpu_count, Some(2));
        assert!(!request.env.contains_key("PUBLIC_KEY"), "RunPod injects the account's keys of now");
        assert!(!request.env.contains_key("GPUCLOUD_LAUNCH_TAG"));
        assert_eq!(request.env.get("MODEL").map(String::as_str), Some("llama"));
        let (anywhere, _) = relaunch_request(&pod, RedeployScope::SameRegion).unwrap();
        assert_eq!(anywhere.query.regions, ["EU"], "Europe, when the caller allows the region");
    }
}
