//! Spot jobs: an interruption seen from provider state, the recovery policy that relaunches the
//! job, and the checkpoint directory carried from one pod to the next.
//!
//! **Detection.** PrimeIntellect documents no preemption notice and no "preempted" status, so
//! while a spot pod runs its job, [`Fleet::run`] reads the pod from its provider every poll
//! interval ([`super::Job::watch_interval`], by default the provider's own): a pod that has left
//! `ACTIVE` without being asked, or that its provider no longer has (404), is interrupted; so is
//! a pod whose SSH connection was lost (or whose command ended) while its provider no longer
//! reports it running. Either way it is seen by the first provider read after it happened,
//! within one poll interval, and it is reported as an [`Interruption`](crate::model::spot::Interruption), never as the command's
//! failure.
//!
//! **Recovery** ([`Recovery`]): up to [`Recovery::max_interruptions`] interruptions are
//! recovered by relaunching the job (launch, sync, setup, command) through the fleet's usual
//! failover, every place an interruption happened tried last ([`crate::LaunchRequest::try_last`]);
//! on spot capacity again until [`Recovery::on_demand_after`] interruptions (falling back to
//! on-demand at once if no spot offer can be started), on-demand after.
//!
//! **Checkpoints** ([`Checkpoint`]): the job's documented resume contract is that the command is
//! run again from the start and finds its checkpoints where it left them. A PrimeIntellect pod's
//! disk goes with it, so the directory is pulled back to this machine every
//! [`Checkpoint::every`] while the command runs (into a private directory under
//! [`crate::remote::state_dir`], removed when the job ends), and pushed to the relaunched pod
//! after the sync, before setup and command run. [`RestoredCheckpoint`] says how old it was.

use crate::Fleet;
use crate::LaunchRequest;
use crate::model::error::{Error, Result};
use crate::model::spot::{InterruptionSign, Place};
use crate::model::{PodId, PodStatus};
use crate::remote::RemoteSession;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What [`Fleet::run`] does when its spot pod is interrupted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    /// How many interruptions are recovered by relaunching the job; one more ends it with
    /// [`Error::Interrupted`]. 0 (the default): the first interruption ends it.
    pub max_interruptions: u32,
    /// After this many interruptions the job is relaunched on on-demand capacity only; before,
    /// on spot again (on-demand when no spot offer can be started). `None`: spot every time.
    pub on_demand_after: Option<u32>,
}

impl Recovery {
    /// The launch that follows `interruptions` (at least one) of a job first launched with
    /// `first`: every interrupted place tried last, and spot or on-demand as the policy says.
    pub fn relaunch(&self, first: &LaunchRequest, interruptions: &[crate::model::spot::Interruption]) -> LaunchRequest {
        let mut next = first.clone();
        for place in interruptions.iter().map(|i| &i.place) {
            if !next.try_last.contains(place) {
                next.try_last.push(place.clone());
            }
        }
        let count = u32::try_from(interruptions.len()).unwrap_or(u32::MAX);
        next.query.spot = if self.on_demand_after.is_some_and(|k| count >= k) {
            Some(false)
        } else if first.query.spot == Some(false) {
            // Only on-demand was asked for; it is not for recovery to widen that.
            Some(false)
        } else {
            Some(true)
        };
        next
    }
}

/// A directory the job's command keeps its checkpoints in, carried from an interrupted pod to
/// the next (see [the module](self)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The directory on the pod: relative to the job's remote directory, or absolute.
    pub remote: String,
    /// How often it is pulled back while the command runs.
    pub every: Duration,
}

impl Checkpoint {
    /// The directory on the pod for a job working in `remote_dir`.
    pub fn path_in(&self, remote_dir: &str) -> String {
        if self.remote.starts_with('/') { self.remote.clone() } else { format!("{remote_dir}/{}", self.remote) }
    }
}

/// Where PrimeIntellect mounts a pod's persistent disk ("mounted at `/data` once the instance
/// completes provisioning", its provisioning guide).
pub const PRIMEINTELLECT_DISK_MOUNT: &str = "/data";

/// Whether `checkpoint`, for a job working in `remote_dir`, lies on the disk `launch` attaches
/// (PrimeIntellect's, at [`PRIMEINTELLECT_DISK_MOUNT`]): a relaunch that attaches the disk again
/// (in its data center) finds it there as the command left it, and is never pushed an older
/// pulled copy over it. The path is resolved first (a relative one in `remote_dir`, which may
/// itself be on the disk) and read lexically (`//`, `.` and `..` as a shell would, without
/// following links): `/data/../ckpt` is not on the disk, `//data/ckpt` and `/data/./ckpt` are.
pub fn on_disk(checkpoint: &Checkpoint, remote_dir: &str, launch: &LaunchRequest) -> bool {
    if launch.volume_ids.is_empty() {
        return false;
    }
    let path = checkpoint.path_in(remote_dir);
    if !path.starts_with('/') {
        // Relative to the pod's home directory, which is not the disk.
        return false;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.first().is_some_and(|first| Some(*first) == PRIMEINTELLECT_DISK_MOUNT.strip_prefix('/'))
}

/// Refuses, before any request, a checkpoint directory that names no directory (empty, or
/// ending in `.` or `..`: its last part names the pulled copy on this machine), or that is
/// pulled every 0 s.
pub fn check_checkpoint(checkpoint: &Checkpoint, _launch: &LaunchRequest) -> Result<()> {
    let remote = checkpoint.remote.trim_end_matches('/');
    let last = remote.rsplit('/').next().unwrap_or_default();
    if remote.is_empty() || last == "." || last == ".." {
        return Err(Error::invalid(
            "checkpoint_dir",
            "name a directory (relative to the job's directory, or absolute), not ending in . or ..",
        ));
    }
    if checkpoint.every.is_zero() {
        return Err(Error::invalid("checkpoint_every", "must be more than zero"));
    }
    Ok(())
}

/// The checkpoint a relaunched job started from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RestoredCheckpoint {
    /// The pod it was pushed to.
    pub pod: PodId,
    /// How old it was when pushed: since it was pulled from the interrupted pod.
    pub age: Duration,
    /// Where it came from: [`RESTORED_ON_DISK`] or [`RESTORED_BY_PUSH`].
    pub how: &'static str,
}

/// [`RestoredCheckpoint::how`] when the relaunch attached the job's disk again (in its data
/// center) and found the checkpoint there; its age is then the time since the interruption.
pub const RESTORED_ON_DISK: &str = "on the job's disk, attached again in its data center";

/// [`RestoredCheckpoint::how`] when the last pull was pushed to the relaunched pod.
pub const RESTORED_BY_PUSH: &str = "pulled back from the interrupted pod and pushed";

/// How an attempt of a job gets its checkpoint directory.
#[derive(Clone, Copy, Default)]
pub(crate) struct Carry<'a> {
    /// Where it is pulled back to while the command runs, and pushed from on a relaunch.
    pub store: Option<&'a CheckpointStore>,
    /// Set when this attempt attached the job's disk again after the interruption seen then:
    /// the checkpoint is on the disk, and nothing is pushed over it.
    pub on_disk_since: Option<Instant>,
}

/// This machine's copy of a job's checkpoint directory: `current/<name>` is the last whole pull,
/// `pulled_at` when it was taken (Unix seconds).
pub(crate) struct CheckpointStore {
    dir: PathBuf,
    pulled_at: Mutex<Option<SystemTime>>,
    /// Removed when dropped (an attached run's), or kept for other processes (a recorded job's).
    temporary: bool,
}

impl CheckpointStore {
    /// A fresh private directory under [`crate::remote::state_dir`], removed when dropped.
    pub(crate) fn new() -> Result<Self> {
        let root = crate::remote::state_dir().join("checkpoints");
        crate::remote::session::ensure_private(&crate::remote::state_dir())?;
        crate::remote::session::ensure_private(&root)?;
        let dir = root.join(format!("{}-{:016x}", std::process::id(), fastrand::u64(..)));
        crate::remote::session::ensure_private(&dir)?;
        Ok(Self { dir, pulled_at: Mutex::new(None), temporary: true })
    }

    /// The lasting store in `dir` (a recorded job's, shared by the processes that recover it),
    /// created private; its last pull's time read back.
    pub(crate) fn lasting(dir: PathBuf) -> Result<Self> {
        crate::remote::session::ensure_private(&dir)?;
        let pulled_at = std::fs::read_to_string(dir.join("pulled_at"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .filter(|_| dir.join("current").is_dir())
            .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        Ok(Self { dir, pulled_at: Mutex::new(pulled_at), temporary: false })
    }

    /// When the last whole pull was taken.
    pub(crate) fn pulled_at(&self) -> Option<SystemTime> {
        *self.pulled_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a pull is due: none yet, or the last one is `every` old.
    pub(crate) fn due(&self, every: Duration) -> bool {
        self.pulled_at().is_none_or(|at| at.elapsed().unwrap_or(Duration::MAX) >= every)
    }

    /// Pulls `remote` (a directory on the session's pod) back; only a whole pull replaces the
    /// last one.
    pub(crate) async fn pull(&self, session: &RemoteSession, remote: &str) -> Result<()> {
        let next = self.dir.join("next");
        let _ = std::fs::remove_dir_all(&next);
        session.download(remote, &next).await?;
        let (current, old) = (self.dir.join("current"), self.dir.join("old"));
        let _ = std::fs::remove_dir_all(&old);
        let local = |what: &str, e: std::io::Error| Error::Ssh {
            id: session.pod().clone(),
            message: format!("keeping the pulled checkpoint ({what}): {e}"),
        };
        if current.exists() {
            std::fs::rename(&current, &old).map_err(|e| local("set aside the last one", e))?;
        }
        std::fs::rename(&next, &current).map_err(|e| local("move it into place", e))?;
        let _ = std::fs::remove_dir_all(&old);
        let now = SystemTime::now();
        let secs = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if !self.temporary {
            std::fs::write(self.dir.join("pulled_at"), secs.to_string()).map_err(|e| local("note its time", e))?;
        }
        *self.pulled_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        Ok(())
    }

    /// Pushes the last pull to `remote` on the session's pod; `None` when nothing was pulled yet.
    pub(crate) async fn restore(&self, session: &RemoteSession, remote: &str) -> Result<Option<RestoredCheckpoint>> {
        let Some(pulled_at) = self.pulled_at() else { return Ok(None) };
        let (parent, name) = match remote.trim_end_matches('/').rsplit_once('/') {
            Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
            None => (".", remote.trim_end_matches('/')),
        };
        let local = self.dir.join("current").join(name);
        if !local.exists() {
            return Ok(None);
        }
        session.upload(&local, parent).await?;
        Ok(Some(RestoredCheckpoint {
            pod: session.pod().clone(),
            age: pulled_at.elapsed().unwrap_or_default(),
            how: RESTORED_BY_PUSH,
        }))
    }
}

impl Drop for CheckpointStore {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether a pod in `status` is still running its job: the provider's `ACTIVE` (with or without
/// its SSH endpoint known yet). An unknown status is not taken for an interruption.
fn still_running(status: &PodStatus) -> bool {
    matches!(status, PodStatus::Running | PodStatus::Starting | PodStatus::Unknown(_))
}

/// Reads pod `id` every `every` until it shows an interruption; `last_running` is set at each
/// read that still shows it running. A failed read (other than 404) is tried again at the next
/// poll.
pub(crate) async fn watch(
    fleet: &Fleet,
    id: &PodId,
    every: Duration,
    last_running: &Mutex<Instant>,
) -> InterruptionSign {
    loop {
        tokio::time::sleep(every).await;
        match fleet.get(id).await {
            Ok(pod) if still_running(&pod.status) => {
                *last_running.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }
            Ok(pod) => return InterruptionSign::LeftRunning { status: pod.provider_status },
            Err(e) if e.is_not_found() => return InterruptionSign::Gone,
            Err(e) => tracing::debug!(pod = %id, error = %e, "reading the spot pod's state; next poll"),
        }
    }
}

/// After the job's work on pod `id` ended (`ssh_lost`: with an SSH error rather than the
/// command's exit status), one read says whether the pod was interrupted meanwhile.
pub(crate) async fn confirm(fleet: &Fleet, id: &PodId, ssh_lost: bool) -> Option<InterruptionSign> {
    let status = match fleet.get(id).await {
        Ok(pod) if still_running(&pod.status) => return None,
        Ok(pod) => pod.provider_status,
        Err(e) if e.is_not_found() => {
            return Some(if ssh_lost {
                InterruptionSign::SshLost { status: "gone".into() }
            } else {
                InterruptionSign::Gone
            });
        }
        Err(e) => {
            tracing::debug!(pod = %id, error = %e, "could not read the spot pod's state after its work ended");
            return None;
        }
    };
    Some(if ssh_lost { InterruptionSign::SshLost { status } } else { InterruptionSign::LeftRunning { status } })
}

/// Where an offer placed a pod, from its launch: the offer's provider and data center.
pub(crate) fn place_of(offer: &crate::model::Offer) -> Place {
    Place { provider: offer.provider, data_center: offer.data_center.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use crate::model::spot::Interruption;

    fn interruption(dc: &str) -> Interruption {
        Interruption {
            pod: "primeintellect:abc".parse().unwrap(),
            place: Place { provider: Provider::PrimeIntellect, data_center: Some(dc.into()) },
            spot: true,
            sign: InterruptionSign::Gone,
            ran_for: Duration::from_secs(60),
            detected_within: Duration::from_secs(1),
            price_per_hour: Some(1.0),
            cost: Some(1.0 / 60.0),
        }
    }

    #[test]
    fn relaunches_stay_on_spot_until_k_interruptions_with_interrupted_places_last() {
        let mut first = LaunchRequest::new("H100_80GB", 1, "job");
        first.query.spot = None;
        let policy = Recovery { max_interruptions: 5, on_demand_after: Some(2) };
        let once = policy.relaunch(&first, &[interruption("FIN-01")]);
        assert_eq!(once.query.spot, Some(true), "spot again before K");
        assert_eq!(once.try_last.len(), 1);
        let twice = policy.relaunch(&first, &[interruption("FIN-01"), interruption("FIN-01")]);
        assert_eq!(twice.query.spot, Some(false), "on-demand after K");
        assert_eq!(twice.try_last.len(), 1, "each place once");
        let never = Recovery { max_interruptions: 5, on_demand_after: None };
        assert_eq!(never.relaunch(&first, &[interruption("A"), interruption("B")]).query.spot, Some(true));
        first.query.spot = Some(false);
        assert_eq!(never.relaunch(&first, &[interruption("A")]).query.spot, Some(false), "never widened to spot");
    }

    #[test]
    fn an_unnamed_checkpoint_is_refused_and_one_under_data_is_on_the_disk_only_with_a_disk() {
        let every = Duration::from_secs(60);
        let mut launch = LaunchRequest::new("H100_80GB", 1, "job");
        let at = |remote: &str| Checkpoint { remote: remote.into(), every };
        assert!(check_checkpoint(&at("ckpt"), &launch).is_ok());
        assert!(check_checkpoint(&at(""), &launch).is_err() && check_checkpoint(&at("./"), &launch).is_err());
        let never = check_checkpoint(&Checkpoint { remote: "ckpt".into(), every: Duration::ZERO }, &launch);
        assert!(matches!(never, Err(Error::InvalidInput { field: "checkpoint_every", .. })));
        assert!(!on_disk(&at("/data/ckpt"), "gpucloud-job", &launch), "no disk attached: /data is the pod's own");
        launch.volume_ids.push("disk1".into());
        for remote in ["/data/ckpt", "/data", "/data/", "//data/ckpt", "/data/./ckpt", "/./data//ckpt"] {
            assert!(on_disk(&at(remote), "gpucloud-job", &launch), "{remote}");
            assert!(check_checkpoint(&at(remote), &launch).is_ok());
        }
        // A relative checkpoint in a job directory on the disk is on the disk.
        assert!(on_disk(&at("ckpt"), "/data/work", &launch));
        assert!(on_disk(&at("ckpt"), "/data", &launch));
        for (remote, dir) in
            [("/database/ckpt", "x"), ("ckpt", "gpucloud-job"), ("/data/../ckpt", "x"), ("../ckpt", "/data")]
        {
            assert!(!on_disk(&at(remote), dir, &launch), "{remote} in {dir}");
        }
        // A last part of . or .. names no directory (the pulled copy is kept under that name).
        for remote in ["ckpt/.", "ckpt/..", "/data/..", "..", "/data/../"] {
            let refused = check_checkpoint(&at(remote), &launch);
            assert!(matches!(refused, Err(Error::InvalidInput { field: "checkpoint_dir", .. })), "{remote}");
        }
    }

    #[test]
    fn only_a_pod_that_left_active_counts_as_interrupted() {
        assert!(still_running(&PodStatus::Running) && still_running(&PodStatus::Starting));
        assert!(still_running(&PodStatus::Unknown("UNKNOWN".into())));
        for status in [PodStatus::Stopped, PodStatus::Terminated, PodStatus::Terminating, PodStatus::Failed] {
            assert!(!still_running(&status), "{status:?}");
        }
    }
}
