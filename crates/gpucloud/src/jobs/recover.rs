//! Recovering a detached spot job when its pod is interrupted: relaunched through the same
//! failover as an attached [`Fleet::run`] ([`Recovery::relaunch`]: every interrupted place tried
//! last, on-demand after K), re-submitting the same command, setup and workdir. No checkpoint is
//! carried (the relaunched command finds only what it left on a disk or volume of its own).
//!
//! Two ways: the process that submitted the job and still holds its [`Job`] waits with
//! [`Fleet::wait_job_recovering`]; or the job was submitted with [`Fleet::submit_recorded`], its
//! definition kept in a [`JobRecord`] ([`super::record`]), and any process on the machine
//! recovers it: a waiter ([`Fleet::wait_recorded`], `gpucloud jobs wait --recover`) or a
//! long-running reaper ([`Fleet::recover_recorded`], `gpucloud reap --every 60s --recover`), one
//! at a time under the record's lock.

use super::Job;
use super::detached::{JobState, Submitted};
use super::record::{Attempt, JobRecord, JobRecords, RecordEnd};
use super::spot::{CheckpointStore, Recovery, RestoredCheckpoint};
use crate::Fleet;
use crate::model::error::{Error, Result};
use crate::model::spot::{Interruption, InterruptionSign};
use crate::model::{PodId, PodStatus};
use chrono::Utc;
use futures::FutureExt as _;
use futures::future::Shared;
use std::time::Duration;
use tokio::time::Instant;

/// How a detached job waited on by [`Fleet::wait_job_recovering`] ended.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The command's exit status, on the last pod.
    pub code: i32,
    /// The job's id at the end: the first id, or the last relaunch's.
    pub id: PodId,
    /// The interruptions recovered on the way, oldest first.
    pub interruptions: Vec<Interruption>,
}

impl Fleet {
    /// Waits for detached job `id` (submitted from `job` with [`Fleet::submit`]) as
    /// [`Fleet::wait_job`] does, and when its spot pod is interrupted, terminates that pod
    /// (confirmed; a pod the provider no longer has counts as ended) and submits `job` again
    /// with the launch [`Recovery::relaunch`] gives, up to `recovery.max_interruptions` times.
    /// `relaunched` is told of each new job (its id is the job's id from then on). `timeout`
    /// bounds the whole wait, relaunches included.
    ///
    /// Errors: as [`Fleet::wait_job`] and [`Fleet::submit`]; [`Error::Interrupted`] listing every
    /// interruption once one more than recovery allows happened; [`Error::Timeout`].
    pub async fn wait_job_recovering(
        &self,
        job: &Job,
        id: &PodId,
        recovery: Recovery,
        poll: Duration,
        timeout: Duration,
        mut relaunched: impl FnMut(&Submitted) + Send,
    ) -> Result<Recovered> {
        let started = Instant::now();
        let mut id = id.clone();
        let mut interruptions: Vec<Interruption> = Vec::new();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let more = match self.wait_job(&id, &job.session, poll, left).await {
                Ok(code) => return Ok(Recovered { code, id, interruptions }),
                Err(Error::Interrupted { interruptions: more }) => more,
                Err(Error::Timeout { what, .. }) => return Err(Error::Timeout { what, waited: started.elapsed() }),
                Err(e) => return Err(e),
            };
            let records = JobRecords::open_default();
            more.iter().for_each(|i| records.note_interrupted(i));
            interruptions.extend(more);
            match self.terminate(&id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            if u32::try_from(interruptions.len()).unwrap_or(u32::MAX) > recovery.max_interruptions {
                return Err(Error::Interrupted { interruptions });
            }
            let mut next = job.clone();
            next.launch = recovery.relaunch(&job.launch, &interruptions);
            let left = timeout.saturating_sub(started.elapsed());
            // Past the deadline the relaunch is cancelled (its pod, if any, terminated), never dropped.
            let submitted = self.submit(&next, |_| {}, tokio::time::sleep(left)).await?;
            relaunched(&submitted);
            id = submitted.id;
        }
    }
}

/// How [`Fleet::recover_one`] goes about it.
#[derive(Clone, Copy)]
struct Recovering {
    /// How long to wait for the job's lock.
    lock_wait: Duration,
    /// How long the relaunch may take.
    budget: Duration,
}

/// How long relaunching `record`'s job may take: its launch's ready timeout, and as long again
/// (at most 10 minutes) for the sync and the start.
fn relaunch_budget(record: &JobRecord) -> Duration {
    let launch = record.job.launch.ready_timeout;
    launch.saturating_add(launch.min(Duration::from_secs(10 * 60)))
}

/// What a relaunch adds to a recorded job's name (`-r` and six hex digits).
const RELAUNCH_SUFFIX_LEN: usize = "-r000000".len();

/// How long one pull of a recorded job's checkpoint may take.
pub const CHECKPOINT_PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What one sweep of [`Fleet::recover_recorded`] did with one recorded job.
#[derive(Debug)]
pub enum RecordSweep {
    /// Its pod was interrupted and it was relaunched on `to`.
    Relaunched {
        /// The job (its first id).
        job: PodId,
        /// The interruption.
        interruption: Interruption,
        /// The new pod.
        to: Box<Submitted>,
    },
    /// It ended for good this sweep.
    Ended {
        /// The job (its first id).
        job: PodId,
        /// How.
        end: RecordEnd,
    },
    /// A record that cannot be read (written by another version, or damaged): left as it is.
    Unreadable {
        /// Why.
        error: Error,
    },
    /// It could not be looked after this sweep (the next one tries again).
    Failed {
        /// The job (its first id).
        job: PodId,
        /// Why.
        error: Error,
    },
}

/// What the current pod of a recorded job shows.
enum Seen {
    Running,
    Exited(i32),
    Interrupted(Interruption),
    Lost(String),
    Unknown,
}

/// The interruption of `attempt`, shown by `sign`, as far as the record knows it.
fn interruption_of(record: &JobRecord, sign: InterruptionSign) -> Interruption {
    let attempt = &record.current;
    let since = |at: Option<chrono::DateTime<Utc>>| at.and_then(|at| (Utc::now() - at).to_std().ok());
    let ran_for = since(attempt.created_at).unwrap_or_default();
    Interruption {
        pod: attempt.id.clone(),
        place: attempt.place.clone(),
        spot: attempt.spot,
        sign,
        ran_for,
        detected_within: since(record.last_seen_running).unwrap_or(ran_for),
        price_per_hour: attempt.price_per_hour,
        cost: Interruption::estimate_cost(attempt.price_per_hour, ran_for),
    }
}

impl Fleet {
    /// [`Fleet::submit`] that also keeps a [`JobRecord`] of the job in `records`, so that
    /// [`Fleet::wait_recorded`] and [`Fleet::recover_recorded`] can recover it (with
    /// [`Job::recovery`]) from any process on this machine. The records' directory is checked
    /// before anything is launched; a record that cannot be written after the job started ends
    /// the job (its pod terminated and that confirmed): a job that cannot be recovered is not
    /// handed back as one that can.
    ///
    /// Errors: as [`Fleet::submit`]; [`Error::UnsafeStateDir`] for the records' directory.
    pub async fn submit_recorded(
        &self,
        job: &Job,
        records: &JobRecords,
        progress: impl FnMut(super::JobEvent<'_>) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Submitted> {
        records.ensure_dir()?;
        let room = crate::model::lease::MAX_LEASED_NAME_LEN - RELAUNCH_SUFFIX_LEN;
        if job.launch.name.len() > room {
            return Err(Error::invalid(
                "name",
                format!(
                    "a recorded job's name must be 1 to {room} characters (its relaunches add -rXXXXXX), got {}",
                    job.launch.name.len()
                ),
            ));
        }
        if let Some(checkpoint) = &job.checkpoint {
            super::spot::check_checkpoint(checkpoint, &job.launch)?;
        }
        let submitted = self.submit(job, progress, cancel).await?;
        if let Err(e) = records.save(&JobRecord::new(job, &submitted.pod)) {
            let guard = self.guard(submitted.pod)?;
            if let Err(t) = guard.terminate().await {
                return Err(Error::TerminationUnconfirmed {
                    id: submitted.id,
                    cause: Box::new(e),
                    termination: t.to_string(),
                });
            }
            return Err(e);
        }
        Ok(submitted)
    }

    /// Waits for recorded job `id` (its first id or any of its pods') like [`Fleet::wait_job`],
    /// recovering it as its record says ([`Job::recovery`]) when its spot pod is interrupted:
    /// the interrupted pod terminated (confirmed), the job relaunched with what is left of its
    /// deadline, the record updated, `relaunched` told. A job another process is recovering is
    /// waited for; one that already ended answers at once. `timeout` bounds the whole wait.
    ///
    /// Errors: [`Error::InvalidInput`] naming `job` when no record knows `id`; as
    /// [`Fleet::wait_job`] and [`Fleet::submit`]; [`Error::Interrupted`] once recovery is used
    /// up; [`Error::Timeout`] (the wait's, or the job's deadline); [`Error::JobEnded`] for a job
    /// cancelled or lost.
    pub async fn wait_recorded(
        &self,
        records: &JobRecords,
        id: &PodId,
        poll: Duration,
        timeout: Duration,
        mut relaunched: impl FnMut(&Submitted) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Recovered> {
        let cancel = cancel.shared();
        let started = Instant::now();
        let timed_out = || Error::Timeout { what: format!("job {id}"), waited: started.elapsed() };
        loop {
            if cancel.clone().now_or_never().is_some() {
                return Err(Error::Cancelled);
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(timed_out());
            }
            let record = records.find(id)?.ok_or_else(|| {
                Error::invalid(
                    "job",
                    format!(
                        "no job record in {} knows {id}: it was not submitted with recovery (run --detach --recover) on this machine",
                        records.dir().display()
                    ),
                )
            })?;
            if let Some(end) = &record.end {
                return match end {
                    RecordEnd::Exited { code } => Ok(Recovered {
                        code: *code,
                        id: record.current.id.clone(),
                        interruptions: record.interruptions.clone(),
                    }),
                    other => Err(record.end_error(other)),
                };
            }
            let current = record.current.id.clone();
            let interruption = if record.interruptions.iter().any(|i| i.pod == current) {
                // Recorded as interrupted, but its relaunch failed: relaunch now.
                None
            } else {
                // A job with a checkpoint directory is waited on in slices of its pull interval,
                // its checkpoint pulled between them.
                let slice = record.job.checkpoint.as_ref().map_or(left, |c| c.every.max(poll).min(left));
                // Waiting only reads: dropped at a cancel, it leaves nothing behind.
                let waited = tokio::select! {
                    waited = self.wait_job(&current, &record.job.session, poll, slice) => waited,
                    () = cancel.clone() => return Err(Error::Cancelled),
                };
                match waited {
                    Ok(code) => {
                        let _lock = records.lock_or_busy(&record.first, left).await?;
                        records.update(&record.first, |r| {
                            if r.current.id == current {
                                r.close(RecordEnd::Exited { code });
                            }
                        })?;
                        continue;
                    }
                    Err(Error::Interrupted { interruptions }) => interruptions.into_iter().last(),
                    Err(e) if e.is_not_found() && record.current.spot => {
                        Some(interruption_of(&record, InterruptionSign::Gone))
                    }
                    Err(e) if e.is_not_found() => {
                        let _lock = records.lock_or_busy(&record.first, left).await?;
                        records.update(&record.first, |r| {
                            if r.current.id == current {
                                r.close(RecordEnd::Lost { why: "its provider no longer has its on-demand pod".into() });
                            }
                        })?;
                        continue;
                    }
                    Err(Error::Timeout { .. }) if slice < left => {
                        self.pull_if_due(records, &record).await;
                        continue;
                    }
                    Err(Error::Timeout { .. }) => return Err(timed_out()),
                    Err(e) => return Err(e),
                }
            };
            let left = timeout.saturating_sub(started.elapsed());
            // A relaunch is given its own time (the launch's, and its sync), not what is left of
            // the wait: cut short, its pod would be made and thrown away.
            let how = Recovering { lock_wait: left, budget: relaunch_budget(&record) };
            match self.recover_one(records, &record.first, &current, interruption, how, cancel.clone()).await? {
                Some(submitted) => relaunched(&submitted),
                // Another process holds the job (it is recovering it), or it ended: read again.
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(poll.min(left)) => {}
                        () = cancel.clone() => return Err(Error::Cancelled),
                    }
                }
            }
        }
    }

    /// One sweep over every recorded job that has not ended (for a long-running reaper:
    /// `gpucloud reap --every 60s --recover`): each current pod is read from its provider; a
    /// spot pod interrupted (gone, or no longer running unasked) is terminated (confirmed) and
    /// the job relaunched as [`Fleet::wait_recorded`] would; a running pod is asked over SSH
    /// whether its command exited (the record then ends). A job another process is recovering is
    /// left to it. Nothing here waits longer than one launch ([`crate::LaunchRequest::ready_timeout`])
    /// per relaunched job.
    ///
    /// `cancel` stops the sweep between jobs and cancels a relaunch under way (its pod, if any,
    /// terminated and that confirmed before this returns): a reaper stopped by a signal leaves
    /// no pod behind.
    pub async fn recover_recorded(
        &self,
        records: &JobRecords,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Vec<RecordSweep> {
        let cancel = cancel.shared();
        let (all, unreadable) = records.all();
        let mut swept: Vec<RecordSweep> =
            unreadable.into_iter().map(|error| RecordSweep::Unreadable { error }).collect();
        for record in all.into_iter().filter(|r| r.end.is_none()) {
            if cancel.clone().now_or_never().is_some() {
                break;
            }
            let job = record.first.clone();
            let current = record.current.id.clone();
            let interruption = if record.interruptions.iter().any(|i| i.pod == current) {
                None
            } else {
                match self.look_at(&record).await {
                    Seen::Running => {
                        self.pull_if_due(records, &record).await;
                        continue;
                    }
                    Seen::Unknown => continue,
                    Seen::Exited(code) => {
                        swept.push(self.close_seen(records, &record, RecordEnd::Exited { code }).await);
                        continue;
                    }
                    Seen::Lost(why) => {
                        swept.push(self.close_seen(records, &record, RecordEnd::Lost { why }).await);
                        continue;
                    }
                    Seen::Interrupted(interruption) => Some(interruption),
                }
            };
            let seen = interruption.clone().unwrap_or_else(|| {
                record
                    .interruptions
                    .iter()
                    .find(|i| i.pod == current)
                    .cloned()
                    .unwrap_or_else(|| interruption_of(&record, InterruptionSign::Gone))
            });
            let budget = relaunch_budget(&record);
            // A job whose lock another process holds is left to it this sweep.
            let how = Recovering { lock_wait: Duration::ZERO, budget };
            match self.recover_one(records, &record.first, &current, interruption, how, cancel.clone()).await {
                Ok(Some(to)) => swept.push(RecordSweep::Relaunched { job, interruption: seen, to: Box::new(to) }),
                Ok(None) => {}
                Err(error) => match records.load(&job).ok().flatten().and_then(|r| r.end) {
                    Some(end) => swept.push(RecordSweep::Ended { job, end }),
                    None => swept.push(RecordSweep::Failed { job, error }),
                },
            }
        }
        swept
    }

    /// Pulls the checkpoint directory of recorded job `record` back from its running pod when a
    /// pull is due ([`crate::jobs::Checkpoint::every`]), holding the job's lock (a job another
    /// process holds is left to it). Failures are logged: the next pull tries again, and a
    /// relaunch starts from the last whole pull.
    async fn pull_if_due(&self, records: &JobRecords, record: &JobRecord) {
        let Some(checkpoint) = &record.job.checkpoint else { return };
        let pulled = async {
            let store = CheckpointStore::lasting(records.checkpoint_dir(&record.first))?;
            if !store.due(checkpoint.every) {
                return Ok(false);
            }
            let Some(_lock) = records.lock(&record.first, Duration::ZERO).await? else { return Ok(false) };
            let pod = self.get(&record.current.id).await?;
            let session = crate::remote::RemoteSession::connect(&pod, &record.job.session).await?;
            let pulled = store.pull(&session, &checkpoint.path_in(&record.job.remote_dir)).await;
            let _ = session.close().await;
            pulled.map(|()| true)
        };
        match tokio::time::timeout(CHECKPOINT_PULL_TIMEOUT, pulled).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(job = %record.first, error = %e, "the job's checkpoint could not be pulled; a relaunch starts from the last pull")
            }
            Err(_) => {
                tracing::warn!(job = %record.first, "pulling the job's checkpoint took too long; given up until the next pull")
            }
        }
    }

    /// Ends recorded job `id` for good ([`JobRecords::end_job`]) and, if a recoverer was killed
    /// during a relaunch, terminates (confirmed) the pod it may have left; returns the pod the job
    /// runs on now, for the caller to cancel (`gpucloud jobs cancel`). `None` when no record
    /// knows `id`.
    ///
    /// Errors: as [`JobRecords::end_job`]; a provider that cannot be listed when an orphan may
    /// exist.
    pub async fn end_recorded_job(&self, records: &JobRecords, id: &PodId, by: &str) -> Result<Option<PodId>> {
        let Some((current, marker)) = records.end_job(id, by).await? else { return Ok(None) };
        if let Some(marker) = marker {
            self.end_orphans(&marker).await?;
        }
        Ok(Some(current))
    }

    /// Terminates (confirmed) every pod named under `marker`: what a recoverer killed during a
    /// relaunch may have left. A provider that cannot be listed fails it: the relaunch waits
    /// for the next recoverer rather than risk a second pod.
    pub(crate) async fn end_orphans(&self, marker: &str) -> Result<()> {
        let (pods, failed) = self.list().await;
        if let Some((_, error)) = failed.into_iter().next() {
            return Err(error);
        }
        // Only a pod whose whole base name is the marker (not one that merely starts with it).
        let named = |pod: &crate::model::Pod| crate::model::lease::parse(&pod.name).is_some_and(|n| n.base == marker);
        for pod in pods.into_iter().filter(|p| named(p) && p.status != PodStatus::Terminated) {
            tracing::warn!(pod = %pod.id, "a pod a killed recoverer's relaunch left; terminating it");
            self.guard(pod)?.terminate().await?;
        }
        Ok(())
    }

    /// Reads the current pod of `record` (and, running, its job's state).
    async fn look_at(&self, record: &JobRecord) -> Seen {
        let pod = match self.get(&record.current.id).await {
            Ok(pod) => pod,
            Err(e) if e.is_not_found() && record.current.spot => {
                return Seen::Interrupted(interruption_of(record, InterruptionSign::Gone));
            }
            Err(e) if e.is_not_found() => return Seen::Lost("its provider no longer has its on-demand pod".into()),
            Err(_) => return Seen::Unknown,
        };
        if pod.is_spot() && !pod.is_ready() && pod.status != PodStatus::Starting {
            let sign = InterruptionSign::LeftRunning { status: pod.provider_status.clone() };
            return Seen::Interrupted(interruption_of(record, sign));
        }
        if !pod.is_ready() {
            return Seen::Unknown;
        }
        match self.job(&record.current.id, &record.job.session).await.map(|r| r.state) {
            Ok(Ok(JobState::Exited { code })) => Seen::Exited(code),
            Ok(Ok(JobState::Running)) => Seen::Running,
            _ => Seen::Unknown,
        }
    }

    async fn close_seen(&self, records: &JobRecords, record: &JobRecord, end: RecordEnd) -> RecordSweep {
        let job = record.first.clone();
        let closed = async {
            let Some(_lock) = records.lock(&job, Duration::ZERO).await? else { return Ok(false) };
            let mut closed = false;
            records.update(&job, |r| {
                if r.current.id == record.current.id && r.end.is_none() {
                    r.close(end.clone());
                    closed = true;
                }
            })?;
            Ok::<_, Error>(closed)
        }
        .await;
        match closed {
            Ok(_) => RecordSweep::Ended { job, end },
            Err(error) => RecordSweep::Failed { job, error },
        }
    }

    /// Recovers job `first` from the interruption of its pod `seen` (`None`: already recorded)
    /// as `how` says. `Ok(None)`: another process holds the job or has recovered it, or it ended.
    /// `cancel` cancels the relaunch (its pod
    /// terminated, confirmed, before this returns).
    async fn recover_one<C>(
        &self,
        records: &JobRecords,
        first: &PodId,
        seen: &PodId,
        interruption: Option<Interruption>,
        how: Recovering,
        cancel: Shared<C>,
    ) -> Result<Option<Submitted>>
    where
        C: std::future::Future<Output = ()> + Send,
    {
        let Recovering { lock_wait, budget } = how;
        let locking = records.lock(first, lock_wait);
        let locked = tokio::select! {
            locked = locking => locked?,
            () = cancel.clone() => return Err(Error::Cancelled),
        };
        let Some(_lock) = locked else { return Ok(None) };
        // Read again under the lock: another recoverer may have been first.
        let Some(mut record) = records.load(first)? else { return Ok(None) };
        if record.end.is_some() || &record.current.id != seen {
            return Ok(None);
        }
        if let Some(marker) = &record.relaunching {
            // The last recoverer was killed mid-relaunch: whatever pod it made is ended first.
            self.end_orphans(marker).await?;
        }
        match self.terminate(seen).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        // A pod gone past its lease was ended for it (by a reaper, perhaps on another machine).
        let lease_over = record.current.lease_expires_at.is_some_and(|at| at <= Utc::now());
        if let Some(interruption) = interruption.filter(|_| !lease_over) {
            records.note_interrupted(&interruption);
            record.interruptions.push(interruption);
            record.interrupted_at = Some(Utc::now());
        }
        let count = u32::try_from(record.interruptions.len()).unwrap_or(u32::MAX);
        let left = record.deadline_left();
        if lease_over {
            record.close(RecordEnd::LeaseOver);
        } else if count > record.job.recovery.max_interruptions {
            record.close(RecordEnd::GaveUp);
        } else if left.is_some_and(|left| left.is_zero()) {
            record.close(RecordEnd::DeadlinePassed);
        }
        // Saved before the relaunch: the interruption is never counted twice, and a failed
        // relaunch is retried (its pod already recorded as interrupted).
        records.save(&record)?;
        if let Some(end) = &record.end {
            return Err(record.end_error(end));
        }
        let mut next = record.job.clone();
        next.launch = record.job.recovery.relaunch(&record.job.launch, &record.interruptions);
        next.deadline = left;
        // The relaunch's pod is named so that a recoverer after a killed one can find it.
        let marker = format!("{}-r{:06x}", record.job.launch.name, fastrand::u32(..0x100_0000));
        next.launch.name = marker.clone();
        record.relaunching = Some(marker);
        records.save(&record)?;
        let store = match &next.checkpoint {
            Some(_) => Some(CheckpointStore::lasting(records.checkpoint_dir(first))?),
            None => None,
        };
        // Past the budget, or at a cancel, the relaunch is cancelled (its pod, if any,
        // terminated), never dropped.
        let until = Instant::now() + budget;
        let stop = || {
            let cancel = cancel.clone();
            async move {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = cancel => {}
                }
            }
        };
        let on_disk = next.checkpoint.as_ref().is_some_and(|c| super::spot::on_disk(c, &next.remote_dir, &next.launch));
        let relaunched = async {
            if !on_disk {
                return self.submit_restoring(&next, |_| {}, stop(), store.as_ref()).await;
            }
            // Where the job's disk attaches, the checkpoint is on it; elsewhere the last pull is
            // pushed to a relaunch without the disk.
            Ok(match self.submit_restoring(&next, |_| {}, stop(), None).await {
                Ok(mut submitted) => {
                    let since = record.interrupted_at.and_then(|at| (Utc::now() - at).to_std().ok());
                    submitted.restored = Some(RestoredCheckpoint {
                        pod: submitted.id.clone(),
                        age: since.unwrap_or_default(),
                        how: super::spot::RESTORED_ON_DISK,
                    });
                    submitted
                }
                Err(Error::NoCapacity { attempts }) => {
                    tracing::warn!(job = %first, ?attempts, "no capacity where the job's disk attaches; relaunching without it and pushing the pulled checkpoint");
                    next.launch.volume_ids.clear();
                    next.launch.query.volume_id = None;
                    let submitted = self.submit_restoring(&next, |_| {}, stop(), store.as_ref()).await?;
                    // From now on the disk's checkpoint is older than the pulls from this pod:
                    // the job's later relaunches go without the disk too (saved with the record).
                    record.job.launch.volume_ids.clear();
                    record.job.launch.query.volume_id = None;
                    submitted
                }
                Err(e) => return Err(e),
            })
        }
        .await;
        let submitted = match relaunched {
            Ok(submitted) => submitted,
            // No capacity: nothing was created, so there is no orphan for a marker to find.
            Err(e @ Error::NoCapacity { .. }) => {
                record.relaunching = None;
                records.save(&record)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        record.current = Attempt::of(&submitted.pod);
        record.relaunching = None;
        record.last_seen_running = Some(Utc::now());
        if let Some(key) = &record.job.session.identity_file {
            // So that `jobs logs|download|ls` reach the new pod with the job's key, as the first.
            if let Err(e) = crate::remote::remember_key(&submitted.id, key) {
                tracing::warn!(pod = %submitted.id, error = %e, "the job's key could not be remembered for its new pod");
            }
        }
        if let Err(e) = records.save(&record) {
            // Unrecorded, the new pod could be relaunched again beside itself: end it.
            let id = submitted.id.clone();
            if let Err(t) = self.guard(submitted.pod)?.terminate().await {
                return Err(Error::TerminationUnconfirmed { id, cause: Box::new(e), termination: t.to_string() });
            }
            return Err(e);
        }
        Ok(Some(submitted))
    }
}
