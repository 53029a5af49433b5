//! **Layer 6, jobs** (feature `remote`, Unix): the job, not just the pod.
//!
//! May use: every layer below it ([`crate::fleet`], [`crate::remote`], [`crate::providers`],
//! [`crate::model`]); nothing uses it.
//!
//! A whole job in one call: [`crate::Fleet::run`] launches a pod (failover and readiness as
//! [`crate::Fleet::launch`]), syncs a working directory to it, runs a setup script and the
//! command with their output streamed, downloads results, and terminates the pod, confirming it.
//!
//! **The pod is terminated on every way out** unless [`Job::keep`] is set and the command ran:
//! the command's failure, a sync error, a lost connection, the job's own deadline, the caller's
//! cancel future completing (the CLI's SIGINT/SIGTERM/SIGHUP), and a dropped future (a
//! [`crate::PodGuard`] terminates it in the background then). Termination is confirmed; when it
//! cannot be, the outcome or the error says so. The termination never waits on local cleanup:
//! the SSH session is closed alongside it, bounded ([`crate::remote::CLOSE_TIMEOUT`]).
//!
//! **A deadline that survives the process**: with [`Job::deadline`], the pod is launched with a
//! lease of the deadline plus [`DEADLINE_LEASE_MARGIN`] ([`LaunchRequest::ttl`], written into its
//! name), so if this process dies (SIGKILL, a lost laptop) the reaper (`gpucloud reap`) ends the
//! pod. A kept pod keeps that lease; extend it (`gpucloud extend`) to keep it longer.
//!
//! **Every download is attempted** once the command ran, whatever its exit status; failures are
//! collected in [`JobOutcome::download_errors`] and never cost the pod's other results (nor a
//! [`Job::keep`] pod). Downloads are unpacked safely (see [`crate::remote::RemoteSession::download`]).
//!
//! **Spot pods are watched** ([`spot`]): an interruption (the provider reports the pod gone or
//! no longer `ACTIVE`, unasked) is seen within one poll and is never the command's failure;
//! [`Job::recovery`] relaunches the job (interrupted places tried last, on-demand after K
//! interruptions), carrying [`Job::checkpoint`] across, and [`JobOutcome::interruptions`] lists
//! what each interrupted attempt cost.
//!
//! The outcome carries the command's exit status, the tail of its output, what the sync moved,
//! the downloads that failed, and the time each phase took: create accepted, provider running,
//! SSH answering, sync, setup, run, download, teardown.

pub mod cluster;
pub mod detached;
pub mod record;
pub mod recover;
pub mod spot;
pub mod supervisor;

pub use detached::{DEFAULT_LINGER, Guards, JobReport, JobState, LogPiece, Submitted};
pub use record::{JobRecord, JobRecords, RecordEnd};
pub use recover::{RecordSweep, Recovered};
pub use spot::{Checkpoint, Recovery, RestoredCheckpoint};

use crate::fleet::LaunchEvent;
use crate::model::error::{Error, Result};
use crate::model::spot::{Interruption, InterruptionSign, Place};
use crate::model::{Pod, PodStatus};
use crate::remote::sync::SyncReport;
use crate::remote::{OutputLine, OutputSink, RemoteCommand, RemoteSession, SessionOptions, Stream};
use crate::{Fleet, LaunchRequest};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// How much longer than [`Job::deadline`] the pod's lease runs: time for this process's own
/// teardown before a reaper may step in.
pub const DEADLINE_LEASE_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The remote directory a job works in by default (relative to the login directory).
pub const DEFAULT_REMOTE_DIR: &str = "gpucloud-job";

/// What [`Fleet::run`] does.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// The pod to launch.
    pub launch: LaunchRequest,
    /// A local directory synced to [`Job::remote_dir`] before anything runs ([`crate::remote::sync`]).
    pub workdir: Option<PathBuf>,
    /// Where the job runs on the pod (default [`DEFAULT_REMOTE_DIR`]).
    pub remote_dir: String,
    /// A shell script run before the command, in the remote directory; its failure ends the
    /// job (the command does not run).
    pub setup: Option<String>,
    /// The command (program and arguments), run in the remote directory.
    pub command: Vec<String>,
    /// `(remote path, local directory)` pairs copied back after the command, whatever its exit
    /// status; a relative remote path is relative to the remote directory.
    pub downloads: Vec<(String, PathBuf)>,
    /// Keep the pod running after the command ran, whatever its exit status and whatever the
    /// downloads did (it is still terminated on a failure before the command ran, on
    /// cancellation and past the deadline).
    pub keep: bool,
    /// The whole job's deadline, from launch to teardown. It is also the pod's lease (plus
    /// [`DEADLINE_LEASE_MARGIN`], or the launch's own `ttl` when shorter), so that a reaper ends
    /// the pod when this process cannot.
    pub deadline: Option<Duration>,
    /// How to connect ([`SessionOptions::identity_file`] defaults to none: the user's ssh).
    pub session: SessionOptions,
    /// Whether the output is also split into lines for [`JobEvent::Output`] (yes by default).
    /// A byte pass-through that reads only [`JobEvent::OutputBytes`] turns it off: splitting a
    /// large output into lines costs most of the CPU of streaming it. The outcome's tail is
    /// kept either way ([`crate::remote::OutputSink::wants_lines`]).
    pub output_lines: bool,
    /// A detached job ([`Fleet::submit`]): how long its pod stays after the command ended, so
    /// that results can be collected (default [`DEFAULT_LINGER`]); then its watchdog ends it.
    pub linger: Duration,
    /// What an interrupted spot pod leads to ([`spot`]): by default the first interruption ends
    /// the job with [`Error::Interrupted`].
    pub recovery: Recovery,
    /// A checkpoint directory carried from an interrupted pod to the next ([`spot`]).
    pub checkpoint: Option<Checkpoint>,
    /// How often a spot pod's provider is asked whether it still runs; `None`: the provider's
    /// own poll interval ([`crate::Provisioner::poll_interval`]). An interruption is seen within
    /// one such interval.
    pub watch_interval: Option<Duration>,
}

impl Job {
    /// Runs `command` on a pod launched by `launch`.
    pub fn new<I, S>(launch: LaunchRequest, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            launch,
            workdir: None,
            remote_dir: DEFAULT_REMOTE_DIR.into(),
            setup: None,
            command: command.into_iter().map(Into::into).collect(),
            downloads: Vec::new(),
            keep: false,
            deadline: None,
            session: SessionOptions::default(),
            output_lines: true,
            linger: DEFAULT_LINGER,
            recovery: Recovery::default(),
            checkpoint: None,
            watch_interval: None,
        }
    }
}

/// How long each phase took; `None` for phases that did not run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PhaseTimings {
    /// From the start until a create was accepted.
    pub create_accepted: Option<Duration>,
    /// From the start until the provider reported the pod running.
    pub provider_running: Option<Duration>,
    /// From the start until its SSH endpoint answered (the launch returned).
    pub ssh_answering: Option<Duration>,
    /// Connecting and syncing the working directory.
    pub sync: Option<Duration>,
    /// The setup script.
    pub setup: Option<Duration>,
    /// The command.
    pub run: Option<Duration>,
    /// The downloads.
    pub download: Option<Duration>,
    /// Terminating and confirming it.
    pub teardown: Option<Duration>,
}

impl PhaseTimings {
    /// Notes what a launch step says about the phases, `elapsed` after the start: a create
    /// accepted, the provider first reporting the pod running.
    pub fn observe_launch(&mut self, event: &LaunchEvent<'_>, elapsed: Duration) {
        match event {
            LaunchEvent::Created { .. } => self.create_accepted = Some(elapsed),
            LaunchEvent::Observed { pod } if pod.status == PodStatus::Running => {
                self.provider_running.get_or_insert(elapsed);
            }
            _ => {}
        }
    }

    /// The launch returned a ready pod `elapsed` after the start: its SSH endpoint answers (and
    /// so the provider reports it running, if no read said so before).
    pub fn launch_ready(&mut self, elapsed: Duration) {
        self.ssh_answering = Some(elapsed);
        self.provider_running.get_or_insert(elapsed);
    }
}

/// What a job did.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The pod it ran on.
    pub pod: Pod,
    /// The command's exit status.
    pub exit_code: i32,
    /// The last lines of its output.
    pub tail: Vec<OutputLine>,
    /// What the sync moved.
    pub sync: Option<SyncReport>,
    /// How long each phase took.
    pub timings: PhaseTimings,
    /// Whether the pod was kept running ([`Job::keep`]); otherwise it was terminated and that
    /// confirmed, or [`JobOutcome::teardown_error`] says why not.
    pub kept: bool,
    /// Why the pod's termination could not be confirmed, if it could not.
    pub teardown_error: Option<String>,
    /// The downloads that failed (each was attempted; the others were written).
    pub download_errors: Vec<DownloadFailure>,
    /// Every interruption of the job's spot pods before this attempt, each with what it cost
    /// (recovered by [`Job::recovery`]); empty when none was interrupted.
    pub interruptions: Vec<Interruption>,
    /// The checkpoint this attempt's command started from, and how old it was ([`Job::checkpoint`]).
    pub restored_checkpoint: Option<RestoredCheckpoint>,
}

impl JobOutcome {
    /// What the interrupted attempts cost, estimated (each at its rate over its life); `None`
    /// when there were none, or a rate is unknown.
    pub fn interrupted_cost(&self) -> Option<f64> {
        if self.interruptions.is_empty() {
            return None;
        }
        self.interruptions.iter().map(|i| i.cost).sum()
    }
}

/// A download that failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DownloadFailure {
    /// The remote path, as in [`Job::downloads`].
    pub remote: String,
    /// The local directory.
    pub local: PathBuf,
    /// Why.
    pub error: String,
}

impl Job {
    /// The launch as [`Fleet::run`] sends it: [`Job::launch`] with the deadline's lease, and
    /// exempt from the idle rule ([`LaunchRequest::idle_exempt`]): a job's pod does work its GPUs
    /// do not show (sync, setup, downloads), and its lease and deadline end it.
    pub fn launch_request(&self) -> LaunchRequest {
        let mut launch = self.launch.clone();
        launch.idle_exempt = true;
        if let Some(deadline) = self.deadline {
            let lease = deadline.saturating_add(DEADLINE_LEASE_MARGIN).min(crate::model::lease::MAX_TTL);
            launch.ttl = Some(launch.ttl.map_or(lease, |ttl| ttl.min(lease)));
        }
        launch
    }
}

/// Steps of a job, for progress displays.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobEvent<'a> {
    /// A launch step.
    Launch(LaunchEvent<'a>),
    /// The pod is ready; connecting.
    Connecting(&'a Pod),
    /// What the sync sent.
    Synced(&'a SyncReport),
    /// A line of the setup script's or the command's output (lossy text).
    Output(&'a OutputLine),
    /// The same output as bytes, exactly as they came (before [`JobEvent::Output`] splits them),
    /// for a byte-exact pass-through.
    OutputBytes(Stream, &'a [u8]),
    /// Tearing down.
    TearingDown(&'a Pod),
    /// The setup is done (or there is none): the command starts on this pod.
    CommandStarting(&'a Pod),
    /// The job's checkpoint directory was pulled back from this pod ([`Job::checkpoint`]).
    CheckpointPulled(&'a Pod),
    /// The last pulled checkpoint was pushed to this (relaunched) pod.
    CheckpointRestored(&'a RestoredCheckpoint),
    /// The job's spot pod was interrupted (it is terminated next).
    Interrupted(&'a Interruption),
    /// Relaunching the job after an interruption ([`Job::recovery`]).
    Relaunching {
        /// Which attempt this is (2 for the first relaunch).
        attempt: usize,
        /// The launch as it is sent (interrupted places last; spot or on-demand).
        request: &'a LaunchRequest,
    },
}

impl Fleet {
    /// Runs `job`. See [`crate::jobs`]. `cancel` completing ends it (the pod terminated);
    /// `progress` sees each step and each output line.
    ///
    /// A spot pod is watched for interruptions ([`spot`]); with [`Job::recovery`] an interrupted
    /// job is relaunched (its checkpoint carried across with [`Job::checkpoint`]) and the outcome
    /// lists every interruption and what it cost ([`JobOutcome::interruptions`]).
    ///
    /// Errors: the launch's errors as [`Fleet::launch`] has them (nothing is left running);
    /// [`Error::InvalidInput`] for an empty command or a missing workdir, before any request;
    /// a failed setup script is [`Error::Ssh`] with its exit status; SSH errors
    /// ([`Error::NoDirectSsh`], [`Error::SshAuth`], [`Error::SshConnectionLost`], ...);
    /// [`Error::Timeout`] past the deadline; [`Error::Cancelled`]; [`Error::Interrupted`] when
    /// the spot pod was taken back and no recovery was allowed or left (never the command's
    /// failure). A command that exits non-zero is an outcome, not an error.
    pub async fn run(
        &self,
        job: &Job,
        mut progress: impl FnMut(JobEvent<'_>) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<JobOutcome> {
        if job.command.is_empty() {
            return Err(Error::invalid("command", "is empty: name the program to run"));
        }
        if let Some(dir) = &job.workdir
            && !dir.is_dir()
        {
            return Err(Error::invalid("workdir", format!("{} is not a directory", dir.display())));
        }
        if let Some(checkpoint) = &job.checkpoint {
            spot::check_checkpoint(checkpoint, &job.launch)?;
        }
        // Before anything bills: a session on the pod will need these.
        crate::remote::check_state_dirs()?;
        let started = Instant::now();
        let deadline = job.deadline.map(|d| started + d);
        let expired = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(cancel, expired);
        let store = job.checkpoint.as_ref().map(|_| spot::CheckpointStore::new()).transpose()?;
        let first = job.launch_request();
        let mut launch = first.clone();
        let mut interruptions: Vec<Interruption> = Vec::new();
        let mut interrupted_at: Option<Instant> = None;
        // Set once a relaunch went without the job's disk: the disk's checkpoint is then older
        // than what that pod wrote (and was pulled), so no later relaunch resumes from the disk.
        let mut off_disk = false;
        loop {
            let on_disk = job.checkpoint.as_ref().is_some_and(|c| spot::on_disk(c, &job.remote_dir, &launch));
            let carry = spot::Carry { store: store.as_ref(), on_disk_since: interrupted_at.filter(|_| on_disk) };
            let attempt = self.attempt(job, &launch, started, &mut progress, &mut cancel, &mut expired, carry).await;
            match attempt {
                Attempt::Done(mut outcome) => {
                    outcome.interruptions = interruptions;
                    return Ok(*outcome);
                }
                // No spot capacity for the relaunch: on-demand at once, when the job allows it.
                Attempt::Failed(Error::NoCapacity { attempts })
                    if !interruptions.is_empty() && launch.query.spot == Some(true) && first.query.spot.is_none() =>
                {
                    tracing::warn!(?attempts, "no spot capacity for the relaunch; relaunching on-demand");
                    launch.query.spot = Some(false);
                    progress(JobEvent::Relaunching { attempt: interruptions.len() + 1, request: &launch });
                }
                // No capacity where the job's disk (holding its checkpoint) can attach: the
                // relaunch goes elsewhere without it, and the last pull is pushed.
                Attempt::Failed(Error::NoCapacity { attempts })
                    if !interruptions.is_empty()
                        && job.checkpoint.as_ref().is_some_and(|c| spot::on_disk(c, &job.remote_dir, &launch)) =>
                {
                    tracing::warn!(
                        ?attempts,
                        "no capacity where the job's disk attaches; relaunching without it and pushing the pulled checkpoint"
                    );
                    launch = job.recovery.relaunch(&first, &interruptions);
                    launch.volume_ids.clear();
                    launch.query.volume_id = None;
                    off_disk = true;
                    progress(JobEvent::Relaunching { attempt: interruptions.len() + 1, request: &launch });
                }
                Attempt::Failed(e) => return Err(e),
                Attempt::Interrupted(interruption) => {
                    record::JobRecords::open_default().note_interrupted(&interruption);
                    interruptions.push(*interruption);
                    interrupted_at = Some(Instant::now());
                    if interruptions.len() > job.recovery.max_interruptions as usize {
                        return Err(Error::Interrupted { interruptions });
                    }
                    launch = job.recovery.relaunch(&first, &interruptions);
                    if off_disk {
                        launch.volume_ids.clear();
                        launch.query.volume_id = None;
                    }
                    progress(JobEvent::Relaunching { attempt: interruptions.len() + 1, request: &launch });
                }
            }
        }
    }

    /// One launch of the job and its work on that pod, until the command ran, the job failed,
    /// or its spot pod was interrupted (then terminated and confirmed, for the caller to
    /// relaunch).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        job: &Job,
        launch: &LaunchRequest,
        started: Instant,
        progress: &mut (impl FnMut(JobEvent<'_>) + Send),
        cancel: &mut (impl std::future::Future<Output = ()> + Send + Unpin),
        expired: &mut (impl std::future::Future<Output = ()> + Send + Unpin),
        carry: spot::Carry<'_>,
    ) -> Attempt {
        let stopped = |timeout: bool| {
            if timeout {
                Error::Timeout { what: "the job".into(), waited: started.elapsed() }
            } else {
                Error::Cancelled
            }
        };
        let stop = |timeout: bool| Attempt::Failed(stopped(timeout));
        let mut timings = PhaseTimings::default();
        // Where the pod was placed and when its create was accepted: what an interruption reports.
        let mut placed: Option<(Place, bool)> = None;
        let mut created_at: Option<Instant> = None;
        // The launch stops and cleans up on its own when told to.
        let stop_launch = std::sync::Arc::new(tokio::sync::Notify::new());
        let told = std::sync::Arc::clone(&stop_launch);
        let mut launching = Box::pin(self.launch_with_progress(
            launch,
            |event| {
                timings.observe_launch(&event, started.elapsed());
                match &event {
                    LaunchEvent::Creating { offer } => placed = Some((spot::place_of(offer), offer.spot)),
                    LaunchEvent::Created { .. } => created_at = Some(Instant::now()),
                    _ => {}
                }
                progress(JobEvent::Launch(event));
            },
            async move { told.notified().await },
        ));
        let mut why_stopped = None;
        let launched = loop {
            tokio::select! {
                launched = &mut launching => break launched,
                () = &mut *cancel, if why_stopped.is_none() => {
                    why_stopped = Some(false);
                    stop_launch.notify_one();
                }
                () = &mut *expired, if why_stopped.is_none() => {
                    why_stopped = Some(true);
                    stop_launch.notify_one();
                }
            }
        };
        drop(launching);
        let pod = match (launched, why_stopped) {
            (Ok(pod), None) => pod,
            (Ok(pod), Some(timeout)) => {
                // Ready just as it was stopped: it is ours to end.
                let id = pod.id.clone();
                match self.guard(pod) {
                    Ok(guard) => {
                        if let Err(e) = guard.terminate().await {
                            tracing::error!(pod = %id, error = %e, "the job's pod could not be confirmed terminated");
                            return Attempt::Failed(left_running(id, stopped(timeout), &e));
                        }
                    }
                    Err(e) => return Attempt::Failed(e),
                }
                return stop(timeout);
            }
            (Err(Error::Cancelled), Some(timeout)) => return stop(timeout),
            (Err(e), _) => return Attempt::Failed(e),
        };
        timings.launch_ready(started.elapsed());
        let guard = match self.guard(pod) {
            Ok(guard) => guard,
            Err(e) => return Attempt::Failed(e),
        };
        let id = guard.pod().id.clone();
        // A spot pod is watched: its provider gives no notice before taking it back.
        let watched = guard.pod().is_spot();
        let poll = job.watch_interval.unwrap_or_else(|| {
            self.provisioner(guard.pod().provider).map(|p| p.poll_interval()).unwrap_or(Duration::from_secs(5))
        });
        let last_running = std::sync::Mutex::new(Instant::now());
        // A cancel or the deadline first interrupts the remote command (its process group gets
        // SIGINT, then SIGKILL), then drops `work`, and with it the session (its ControlMaster
        // is ended at once, without waiting).
        let interrupt = tokio::sync::Notify::new();
        let (result, seen) = {
            let work = run_on_pod(job, guard.pod(), &mut timings, &mut *progress, &interrupt, carry);
            tokio::pin!(work);
            let watching = async {
                if watched { spot::watch(self, &id, poll, &last_running).await } else { std::future::pending().await }
            };
            tokio::pin!(watching);
            enum Ended {
                Work(Box<Result<Ran>>),
                Stopped(bool),
                Seen(InterruptionSign),
            }
            let ended = tokio::select! {
                result = &mut work => Ended::Work(Box::new(result)),
                () = &mut *cancel => Ended::Stopped(false),
                () = &mut *expired => Ended::Stopped(true),
                sign = &mut watching => Ended::Seen(sign),
            };
            match ended {
                Ended::Work(result) => {
                    // Whatever the work's end, a spot pod that is no longer running was
                    // interrupted: its command's status (or its lost connection) is not the job's.
                    let ssh_lost = result.is_err();
                    let seen = if watched { spot::confirm(self, &id, ssh_lost).await } else { None };
                    (Ok(*result), seen)
                }
                Ended::Seen(sign) => (Ok(Err(Error::Cancelled)), Some(sign)),
                Ended::Stopped(timeout) => {
                    interrupt.notify_one();
                    let bound = crate::remote::INTERRUPT_GRACE * 2 + Duration::from_secs(5);
                    let _ = tokio::time::timeout(bound, &mut work).await;
                    (Err(timeout), None)
                }
            }
        };
        let result = match result {
            Ok(result) => result,
            Err(timeout) => Err(stopped(timeout)),
        };
        let pod = guard.pod().clone();
        if let Some(sign) = seen {
            let detected = Instant::now();
            let since_running = *last_running.lock().unwrap_or_else(|e| e.into_inner());
            let ran_for = created_at.map_or(Duration::ZERO, |at| detected.duration_since(at));
            let (place, was_spot) =
                placed.unwrap_or((Place { provider: pod.provider, data_center: pod.data_center.clone() }, true));
            let interruption = Interruption {
                pod: pod.id.clone(),
                place,
                spot: was_spot,
                sign,
                ran_for,
                detected_within: detected.duration_since(since_running),
                price_per_hour: pod.price_per_hour,
                cost: Interruption::estimate_cost(pod.price_per_hour, ran_for),
            };
            tracing::warn!(%interruption, "the job's spot pod was interrupted");
            progress(JobEvent::Interrupted(&interruption));
            progress(JobEvent::TearingDown(&pod));
            let closing = async {
                if let Ok(Ran { session: Some(session), .. }) = result
                    && let Err(e) = session.close().await
                {
                    tracing::debug!(pod = %pod.id, error = %e, "closing the interrupted job's session");
                }
            };
            let (teardown, ()) = tokio::join!(guard.terminate(), closing);
            if let Err(e) = teardown {
                tracing::error!(pod = %pod.id, error = %e, "the interrupted pod could not be confirmed terminated");
            }
            return Attempt::Interrupted(Box::new(interruption));
        }
        // Kept only when asked and the command ran (whatever the downloads did).
        if job.keep
            && let Ok(ran) = result
        {
            let pod = guard.into_pod();
            if let Some(session) = ran.session
                && let Err(e) = session.close().await
            {
                tracing::debug!(pod = %pod.id, error = %e, "closing the job's session");
            }
            return Attempt::Done(Box::new(JobOutcome {
                pod,
                exit_code: ran.exit_code,
                tail: ran.tail,
                sync: ran.sync,
                timings,
                kept: true,
                teardown_error: None,
                download_errors: ran.download_errors,
                interruptions: Vec::new(),
                restored_checkpoint: ran.restored,
            }));
        }
        progress(JobEvent::TearingDown(&pod));
        let teardown_started = Instant::now();
        let (result, session) = match result {
            Ok(mut ran) => {
                let session = ran.session.take();
                (Ok(ran), session)
            }
            Err(e) => (Err(e), None),
        };
        // The session closes alongside the termination, never before it: a close that hangs
        // must not keep the pod billing.
        let closing = async {
            if let Some(session) = session
                && let Err(e) = session.close().await
            {
                tracing::debug!(pod = %pod.id, error = %e, "closing the job's session");
            }
        };
        let (teardown, ()) = tokio::join!(guard.terminate(), closing);
        timings.teardown = Some(teardown_started.elapsed());
        let ran = match result {
            Ok(ran) => ran,
            Err(e) => {
                if let Err(t) = &teardown {
                    tracing::error!(pod = %pod.id, error = %t, "the job's pod could not be confirmed terminated");
                    return Attempt::Failed(left_running(pod.id.clone(), e, t));
                }
                return Attempt::Failed(e);
            }
        };
        let teardown_error = teardown.err().map(|e| e.to_string());
        Attempt::Done(Box::new(JobOutcome {
            pod,
            exit_code: ran.exit_code,
            tail: ran.tail,
            sync: ran.sync,
            timings,
            kept: false,
            teardown_error,
            download_errors: ran.download_errors,
            interruptions: Vec::new(),
            restored_checkpoint: ran.restored,
        }))
    }
}

/// A job's failure, when its pod's termination could not be confirmed either: the caller must
/// learn that a pod may be left billing, whatever failed first.
fn left_running(id: crate::PodId, cause: Error, termination: &Error) -> Error {
    Error::TerminationUnconfirmed { id, cause: Box::new(cause), termination: termination.to_string() }
}

/// How one attempt of a job ended.
enum Attempt {
    /// The command ran (and the pod was kept, or terminated).
    Done(Box<JobOutcome>),
    /// The job failed; nothing of this attempt is left running.
    Failed(Error),
    /// Its spot pod was interrupted; the pod was terminated (and that confirmed, or logged).
    Interrupted(Box<Interruption>),
}

/// What a job did on its pod once the command ran.
struct Ran {
    exit_code: i32,
    tail: Vec<OutputLine>,
    sync: Option<SyncReport>,
    download_errors: Vec<DownloadFailure>,
    /// The checkpoint the command started from.
    restored: Option<RestoredCheckpoint>,
    /// Still open: closed by the caller alongside the pod's termination.
    session: Option<RemoteSession>,
}

/// The job's progress, shared by the command's output and the checkpoint pulls beside it (one
/// task: a lock is never held across an await).
struct SharedProgress<'p, P>(std::sync::Mutex<&'p mut P>);

impl<P: FnMut(JobEvent<'_>) + Send> SharedProgress<'_, P> {
    fn emit(&self, event: JobEvent<'_>) {
        let mut progress = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (*progress)(event);
    }
}

/// Hands a command's output to the job's progress, lines and bytes.
struct ProgressSink<'s, 'p, P> {
    progress: &'s SharedProgress<'p, P>,
    lines: bool,
}

impl<P: FnMut(JobEvent<'_>) + Send> OutputSink for ProgressSink<'_, '_, P> {
    fn line(&mut self, line: OutputLine) {
        self.progress.emit(JobEvent::Output(&line));
    }

    fn bytes(&mut self, stream: Stream, bytes: &[u8]) {
        self.progress.emit(JobEvent::OutputBytes(stream, bytes));
    }

    fn wants_lines(&self) -> bool {
        self.lines
    }
}

/// Sync, setup, command, downloads on a ready pod; with a checkpoint store, the last pulled
/// checkpoint pushed before setup, and the directory pulled back while the command runs. An
/// error means the command did not run to its end; once it has, nothing here fails the job
/// (failed downloads are collected).
async fn run_on_pod(
    job: &Job,
    pod: &Pod,
    timings: &mut PhaseTimings,
    progress: &mut (impl FnMut(JobEvent<'_>) + Send),
    interrupt: &tokio::sync::Notify,
    carry: spot::Carry<'_>,
) -> Result<Ran> {
    progress(JobEvent::Connecting(pod));
    let phase = Instant::now();
    let session = RemoteSession::connect(pod, &job.session).await?;
    let sync = match &job.workdir {
        Some(dir) => {
            let report = crate::remote::sync::sync(&session, dir, &job.remote_dir).await?;
            progress(JobEvent::Synced(&report));
            Some(report)
        }
        None => None,
    };
    let checkpoint = job
        .checkpoint
        .as_ref()
        .zip(carry.store)
        .map(|(checkpoint, store)| (checkpoint.path_in(&job.remote_dir), checkpoint.every, store));
    let restored = match (&checkpoint, carry.on_disk_since) {
        // The job's disk is attached again: the checkpoint is there; a pulled copy is older.
        (Some(_), Some(since)) => {
            Some(RestoredCheckpoint { pod: pod.id.clone(), age: since.elapsed(), how: spot::RESTORED_ON_DISK })
        }
        (Some((remote, _, store)), None) => store.restore(&session, remote).await?,
        (None, _) => None,
    };
    if let Some(restored) = &restored {
        progress(JobEvent::CheckpointRestored(restored));
    }
    timings.sync = Some(phase.elapsed());
    let in_dir = |mut command: RemoteCommand| {
        command.cwd = Some(job.remote_dir.clone());
        command
    };
    let progress = SharedProgress(std::sync::Mutex::new(progress));
    if let Some(setup) = &job.setup {
        let phase = Instant::now();
        let result = session
            .run_interruptible(
                &in_dir(RemoteCommand::script(setup.clone())),
                &mut ProgressSink { progress: &progress, lines: job.output_lines },
                interrupt.notified(),
            )
            .await?;
        timings.setup = Some(phase.elapsed());
        if result.exit_code != 0 {
            return Err(Error::Ssh {
                id: pod.id.clone(),
                message: format!("the setup script exited {}: the command was not run", result.exit_code),
            });
        }
    }
    progress.emit(JobEvent::CommandStarting(pod));
    let phase = Instant::now();
    let command = in_dir(RemoteCommand::new(job.command.clone()));
    let mut sink = ProgressSink { progress: &progress, lines: job.output_lines };
    let running = session.run_interruptible(&command, &mut sink, interrupt.notified());
    let pulling = async {
        let Some((remote, every, store)) = &checkpoint else { return std::future::pending().await };
        loop {
            tokio::time::sleep(*every).await;
            match store.pull(&session, remote).await {
                Ok(()) => progress.emit(JobEvent::CheckpointPulled(pod)),
                // A pull refused as unsafe (a link out of the directory, a member outside it)
                // keeps failing: said, since a relaunch would then start without it.
                Err(e @ Error::UnsafeDownload { .. }) => {
                    tracing::warn!(pod = %pod.id, error = %e, "the checkpoint could not be pulled; a relaunch would start without it")
                }
                // Before the command made it, there is nothing to pull.
                Err(e) => tracing::debug!(pod = %pod.id, error = %e, "pulling the checkpoint"),
            }
        }
    };
    let result = tokio::select! {
        result = running => result?,
        never = pulling => never,
    };
    timings.run = Some(phase.elapsed());
    let mut download_errors = Vec::new();
    if !job.downloads.is_empty() {
        let phase = Instant::now();
        // Every download is attempted: one that fails (a typo, a path the command did not
        // create) must not cost the others.
        for (remote, local) in &job.downloads {
            let path = if remote.starts_with('/') { remote.clone() } else { format!("{}/{remote}", job.remote_dir) };
            if let Err(e) = session.download(&path, local).await {
                download_errors.push(DownloadFailure {
                    remote: remote.clone(),
                    local: local.clone(),
                    error: e.to_string(),
                });
            }
        }
        timings.download = Some(phase.elapsed());
    }
    Ok(Ran { exit_code: result.exit_code, tail: result.tail, sync, download_errors, restored, session: Some(session) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_launch_is_idle_exempt_and_leased_no_longer_than_its_own_ttl() {
        let mut job = Job::new(LaunchRequest::new("H100_80GB", 1, "job"), ["true"]);
        assert!(!job.launch.idle_exempt);
        let launch = job.launch_request();
        assert!(launch.idle_exempt, "the library's own jobs must not be judged idle during setup");
        assert_eq!(launch.ttl, None, "no deadline, no lease");

        job.deadline = Some(Duration::from_secs(600));
        assert_eq!(job.launch_request().ttl, Some(Duration::from_secs(600) + DEADLINE_LEASE_MARGIN));
        job.launch.ttl = Some(Duration::from_secs(60));
        assert_eq!(job.launch_request().ttl, Some(Duration::from_secs(60)), "the shorter of the two");
    }
}
