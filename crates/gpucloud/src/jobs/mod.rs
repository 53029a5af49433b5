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
//! the command's failure, a sync or download error, a lost connection, the job's own deadline,
//! the caller's cancel future completing (the CLI's SIGINT/SIGTERM/SIGHUP), and a dropped future
//! (a [`crate::PodGuard`] terminates it in the background then). Termination is confirmed; when it
//! cannot be, the outcome or the error says so.
//!
//! The outcome carries the command's exit status, the tail of its output, what the sync moved,
//! and the time each phase took: create accepted, provider running, SSH answering, sync, setup,
//! run, download, teardown.

use crate::fleet::LaunchEvent;
use crate::model::error::{Error, Result};
use crate::model::{Pod, PodStatus};
use crate::remote::sync::SyncReport;
use crate::remote::{OutputLine, RemoteCommand, RemoteSession, SessionOptions};
use crate::{Fleet, LaunchRequest};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// The remote directory a job works in by default (relative to the login directory).
pub const DEFAULT_REMOTE_DIR: &str = "gpucloud-job";

/// What [`Fleet::run`] does.
#[derive(Debug, Clone)]
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
    /// Keep the pod running after the command (it is still terminated on a failure before the
    /// command ran, and on cancellation).
    pub keep: bool,
    /// The whole job's deadline, from launch to teardown.
    pub deadline: Option<Duration>,
    /// How to connect ([`SessionOptions::identity_file`] defaults to none: the user's ssh).
    pub session: SessionOptions,
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
    /// A line of the setup script's or the command's output.
    Output(&'a OutputLine),
    /// Tearing down.
    TearingDown(&'a Pod),
}

impl Fleet {
    /// Runs `job`. See [`crate::jobs`]. `cancel` completing ends it (the pod terminated);
    /// `progress` sees each step and each output line.
    ///
    /// Errors: the launch's errors as [`Fleet::launch`] has them (nothing is left running);
    /// [`Error::InvalidInput`] for an empty command or a missing workdir, before any request;
    /// a failed setup script is [`Error::Ssh`] with its exit status; SSH errors
    /// ([`Error::NoDirectSsh`], [`Error::SshAuth`], [`Error::SshConnectionLost`], ...);
    /// [`Error::Timeout`] past the deadline; [`Error::Cancelled`]. A command that exits non-zero
    /// is an outcome, not an error.
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
        let started = Instant::now();
        let deadline = job.deadline.map(|d| started + d);
        let expired = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut timings = PhaseTimings::default();
        tokio::pin!(cancel, expired);
        let stop = |timeout: bool| {
            if timeout {
                Error::Timeout { what: "the job".into(), waited: started.elapsed() }
            } else {
                Error::Cancelled
            }
        };
        // The launch stops and cleans up on its own when told to.
        let stop_launch = std::sync::Arc::new(tokio::sync::Notify::new());
        let told = std::sync::Arc::clone(&stop_launch);
        let mut launching = Box::pin(self.launch_with_progress(
            &job.launch,
            |event| {
                timings.observe_launch(&event, started.elapsed());
                progress(JobEvent::Launch(event));
            },
            async move { told.notified().await },
        ));
        let mut why_stopped = None;
        let launched = loop {
            tokio::select! {
                launched = &mut launching => break launched,
                () = &mut cancel, if why_stopped.is_none() => {
                    why_stopped = Some(false);
                    stop_launch.notify_one();
                }
                () = &mut expired, if why_stopped.is_none() => {
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
                if let Err(e) = self.guard(pod)?.terminate().await {
                    tracing::error!(pod = %id, error = %e, "the job's pod could not be confirmed terminated");
                }
                return Err(stop(timeout));
            }
            (Err(Error::Cancelled), Some(timeout)) => return Err(stop(timeout)),
            (Err(e), _) => return Err(e),
        };
        timings.launch_ready(started.elapsed());
        let guard = self.guard(pod)?;
        let work = run_on_pod(job, guard.pod(), &mut timings, &mut progress);
        let result = tokio::select! {
            result = work => result,
            () = &mut cancel => Err(stop(false)),
            () = &mut expired => Err(stop(true)),
        };
        let pod = guard.pod().clone();
        // Kept only when asked and the command ran.
        if job.keep && result.is_ok() {
            let pod = guard.into_pod();
            let (exit_code, tail, sync) = result?;
            return Ok(JobOutcome { pod, exit_code, tail, sync, timings, kept: true, teardown_error: None });
        }
        progress(JobEvent::TearingDown(&pod));
        let teardown_started = Instant::now();
        let teardown = guard.terminate().await;
        timings.teardown = Some(teardown_started.elapsed());
        let (exit_code, tail, sync) = match result {
            Ok(done) => done,
            Err(e) => {
                if let Err(t) = &teardown {
                    tracing::error!(pod = %pod.id, error = %t, "the job's pod could not be confirmed terminated");
                }
                return Err(e);
            }
        };
        let teardown_error = teardown.err().map(|e| e.to_string());
        Ok(JobOutcome { pod, exit_code, tail, sync, timings, kept: false, teardown_error })
    }
}

/// Sync, setup, command, downloads on a ready pod.
async fn run_on_pod(
    job: &Job,
    pod: &Pod,
    timings: &mut PhaseTimings,
    progress: &mut (impl FnMut(JobEvent<'_>) + Send),
) -> Result<(i32, Vec<OutputLine>, Option<SyncReport>)> {
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
    timings.sync = Some(phase.elapsed());
    let in_dir = |mut command: RemoteCommand| {
        command.cwd = Some(job.remote_dir.clone());
        command
    };
    if let Some(setup) = &job.setup {
        let phase = Instant::now();
        let result = session
            .run(&in_dir(RemoteCommand::script(setup.clone())), &mut |line| progress(JobEvent::Output(&line)))
            .await?;
        timings.setup = Some(phase.elapsed());
        if result.exit_code != 0 {
            return Err(Error::Ssh {
                id: pod.id.clone(),
                message: format!("the setup script exited {}: the command was not run", result.exit_code),
            });
        }
    }
    let phase = Instant::now();
    let result = session
        .run(&in_dir(RemoteCommand::new(job.command.clone())), &mut |line| progress(JobEvent::Output(&line)))
        .await?;
    timings.run = Some(phase.elapsed());
    if !job.downloads.is_empty() {
        let phase = Instant::now();
        for (remote, local) in &job.downloads {
            let remote = if remote.starts_with('/') { remote.clone() } else { format!("{}/{remote}", job.remote_dir) };
            session.download(&remote, local).await?;
        }
        timings.download = Some(phase.elapsed());
    }
    let _ = session.close().await;
    Ok((result.exit_code, result.tail, sync))
}
