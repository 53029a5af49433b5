//! Detached jobs: [`Fleet::submit`] launches, syncs and starts the command under a supervisor on
//! the pod, then returns; the job lives on without this process.
//!
//! **The job id is the pod's id** (`runpod:abc123`): one detached job per pod, so the id maps
//! back to its provider and pod with nothing stored locally. What the job is doing is asked of
//! the pod itself ([`supervisor`]'s files), over SSH; which jobs exist is read from the
//! providers' pod lists ([`Fleet::jobs`]).
//!
//! **Who ends the pod**: on RunPod a watchdog on the pod ends it with the pod-scoped
//! `RUNPOD_API_KEY` RunPod gives every pod, [`Job::linger`] after the command ended (at once
//! once a waiter marked the results collected, never with [`Job::keep`]) and at
//! [`Job::deadline`] in every case. The lease in the pod's name ([`Job::launch_request`]) stays
//! the second line of defence, for a reaper (`gpucloud reap`) to enforce, and it is **required**
//! (a TTL or a deadline): until the job starts on the pod there is no watchdog, and a launcher
//! killed during the launch or the sync would leave a pod nothing ends. PrimeIntellect gives a
//! pod no key of its own, and the user's key is never put on a pod: there only the lease and a
//! running reaper end its pod ([`Guards`] says which guards are in force).

use super::supervisor::{self, WatchdogSettings};
use super::{Job, JobEvent};
use crate::Fleet;
use crate::model::error::{Error, Result};
use crate::model::spot::{Interruption, InterruptionSign, Place};
use crate::model::{Pod, PodId, PodStatus, Provider};
use crate::remote::{OutputLine, OutputSink, RemoteCommand, RemoteSession, SessionOptions, Stream};
use std::time::Duration;
use tokio::time::Instant;

/// How long a detached job's pod stays after its command ended, by default: time for `jobs
/// wait`, `jobs logs` and `jobs download` to collect.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(5 * 60);

/// Each SSH exchange of a job command (a probe, a piece of the log, a cancel) is bounded so.
pub const JOB_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The most bytes of log one read brings.
pub const LOG_CHUNK: u64 = 1024 * 1024;

/// What ends a detached job's pod.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Guards {
    /// A watchdog on the pod ends it with its own scoped key (RunPod).
    pub watchdog: bool,
    /// Seconds after the command ended that the watchdog ends it (`None`: kept, or no watchdog).
    pub linger_s: Option<u64>,
    /// Seconds from submission until the watchdog stops the command and ends the pod.
    pub deadline_s: Option<u64>,
    /// When the lease in the pod's name ends (a reaper enforces it).
    pub lease_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Guards {
    /// In words, for people.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.watchdog {
            match self.linger_s {
                Some(s) => parts.push(format!("the pod ends itself {s} s after the command ends")),
                None => parts.push("the pod is kept after the command ends (--keep)".into()),
            }
            if let Some(s) = self.deadline_s {
                parts.push(format!("and at the deadline ({s} s from now) in every case"));
            }
        } else {
            parts.push("nothing on the pod can end it (no pod-scoped key on this provider): only its lease and a running reaper (`gpucloud reap --every 60s`) end it".into());
        }
        match self.lease_expires_at {
            Some(at) => {
                parts.push(format!("lease until {} (enforced by `gpucloud reap`)", at.format("%Y-%m-%dT%H:%M:%SZ")))
            }
            None => parts.push("no lease".into()),
        }
        parts.join("; ")
    }
}

/// A job [`Fleet::submit`] started.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The job's id: its pod's id.
    pub id: PodId,
    /// The pod it runs on.
    pub pod: Pod,
    /// What ends the pod.
    pub guards: Guards,
    /// The checkpoint pushed to the pod before the command started (a recorded job relaunched
    /// with [`Job::checkpoint`]); `None` otherwise.
    pub restored: Option<super::RestoredCheckpoint>,
}

/// What a pod says about its job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// No detached job was started on this pod.
    None,
    /// The command runs.
    Running,
    /// The command ended with this status.
    Exited {
        /// Its exit status (124: stopped at the deadline; 143: cancelled).
        code: i32,
    },
}

/// A job as [`Fleet::job`] and [`Fleet::jobs`] report it.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's id (its pod's).
    pub id: PodId,
    /// The pod, as its provider lists it.
    pub pod: Pod,
    /// What the pod says, or why it could not be asked.
    pub state: std::result::Result<JobState, String>,
    /// The log's size in bytes.
    pub log_bytes: Option<u64>,
    /// The job's directory on the pod.
    pub remote_dir: Option<String>,
}

/// Collects a command's stdout as bytes and its stderr as text.
#[derive(Default)]
struct Collect {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl OutputSink for Collect {
    fn line(&mut self, _: OutputLine) {}

    fn bytes(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(bytes),
            Stream::Stderr => self.stderr.extend_from_slice(bytes),
        }
    }
}

/// Runs `script` on `session`, bounded by [`JOB_CALL_TIMEOUT`]: exit status, stdout bytes,
/// stderr text.
async fn call(session: &RemoteSession, script: String) -> Result<(i32, Vec<u8>, String)> {
    let mut sink = Collect::default();
    let command = RemoteCommand::script(script);
    let result = tokio::time::timeout(JOB_CALL_TIMEOUT, session.run(&command, &mut sink)).await.map_err(|_| {
        Error::Timeout { what: format!("a job command on {}", session.pod()), waited: JOB_CALL_TIMEOUT }
    })??;
    Ok((result.exit_code, sink.stdout, String::from_utf8_lossy(&sink.stderr).into_owned()))
}

fn parse_state(text: &str) -> Option<JobState> {
    let text = text.trim();
    match text {
        "none" => Some(JobState::None),
        "running" => Some(JobState::Running),
        _ => text.strip_prefix("exited ").and_then(|c| c.trim().parse().ok()).map(|code| JobState::Exited { code }),
    }
}

/// A piece of a job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPiece {
    /// The bytes from the offset asked for, as the command wrote them.
    pub bytes: Vec<u8>,
    /// The job's state, read before the bytes.
    pub state: JobState,
}

impl LogPiece {
    /// Whether this piece reached the log's end and the command had ended before it was read:
    /// nothing more will come.
    pub fn is_last(&self) -> bool {
        matches!(self.state, JobState::Exited { .. }) && (self.bytes.len() as u64) < LOG_CHUNK
    }
}

/// Connects to the job's pod, bounded.
async fn connect(pod: &Pod, options: &SessionOptions) -> Result<RemoteSession> {
    RemoteSession::connect(pod, options).await
}

impl Fleet {
    /// Starts `job` detached: launches its pod (as [`Fleet::run`]), syncs the workdir, and
    /// starts setup and command under a supervisor on the pod that survives the SSH connection
    /// (its own session; output to a log file on the pod; exit status recorded when it ends),
    /// plus the watchdog that ends the pod (see [`crate::jobs::detached`]). Returns once the
    /// supervisor runs. [`Job::downloads`] are not used: collect with [`Fleet::job_download`].
    ///
    /// Errors: as [`Fleet::run`] before the command starts (the pod is then terminated);
    /// [`Error::InvalidInput`] naming `ttl` when the job has no lease ([`Job::deadline`] or a
    /// TTL), before any request.
    pub async fn submit(
        &self,
        job: &Job,
        progress: impl FnMut(JobEvent<'_>) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Submitted> {
        self.submit_restoring(job, progress, cancel, None).await
    }

    /// [`Fleet::submit`] that first pushes the last pull of `store` (if any) to the job's
    /// checkpoint directory, after the sync, before setup and command start.
    pub(crate) async fn submit_restoring(
        &self,
        job: &Job,
        mut progress: impl FnMut(JobEvent<'_>) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
        store: Option<&super::spot::CheckpointStore>,
    ) -> Result<Submitted> {
        if job.command.is_empty() {
            return Err(Error::invalid("command", "is empty: name the program to run"));
        }
        if let Some(dir) = &job.workdir
            && !dir.is_dir()
        {
            return Err(Error::invalid("workdir", format!("{} is not a directory", dir.display())));
        }
        let launch = job.launch_request();
        if launch.ttl.is_none() {
            // The pod's own watchdog starts only with the job: a launcher that dies during the
            // launch or the sync (SIGKILL, a sleeping laptop) would leave a pod nothing ends.
            let why = if self.provisioners().iter().any(|p| p.provider() == Provider::PrimeIntellect) {
                "PrimeIntellect gives a pod no key of its own, so only the lease and a running reaper can end it"
            } else {
                "until the job starts on the pod, its watchdog does not run: if this process dies during the launch or the sync, only the lease and a running reaper can end the pod"
            };
            return Err(Error::invalid("ttl", format!("a detached job needs a lease (--ttl or --deadline): {why}")));
        }
        let started = Instant::now();
        let pod = self.launch_with_progress(&launch, |event| progress(JobEvent::Launch(event)), cancel).await?;
        let guard = self.guard(pod)?;
        progress(JobEvent::Connecting(guard.pod()));
        let watchdog = WatchdogSettings {
            linger: job.linger,
            deadline_in: job.deadline.map(|d| d.saturating_sub(started.elapsed())),
            keep: job.keep,
        };
        let deadline_in = watchdog.deadline_in;
        let mut restored = None;
        let starting = async {
            let session = connect(guard.pod(), &job.session).await?;
            if let Some(dir) = &job.workdir {
                let report = crate::remote::sync::sync(&session, dir, &job.remote_dir).await?;
                progress(JobEvent::Synced(&report));
            }
            if let Some((checkpoint, store)) = job.checkpoint.as_ref().zip(store) {
                restored = store.restore(&session, &checkpoint.path_in(&job.remote_dir)).await?;
                if let Some(restored) = &restored {
                    progress(JobEvent::CheckpointRestored(restored));
                }
            }
            let mut line = String::new();
            line.push_str(&format!("mkdir -p {0} && cd {0} || exit 1; ", crate::remote::quote(&job.remote_dir)));
            if let Some(setup) = &job.setup {
                line.push_str(&format!(
                    "sh -c {} || {{ s=$?; echo \"gpucloud: the setup script exited $s: the command was not run\" >&2; exit $s; }}; ",
                    crate::remote::quote(setup)
                ));
            }
            line.push_str(&RemoteCommand::new(job.command.clone()).to_shell());
            let script = supervisor::start_script(&line, &job.remote_dir, &watchdog);
            let (code, stdout, stderr) = call(&session, script).await?;
            let _ = session.close().await;
            if code != 0 || !String::from_utf8_lossy(&stdout).starts_with("started") {
                return Err(Error::Ssh {
                    id: guard.pod().id.clone(),
                    message: format!("starting the detached job failed (exit {code}): {}", stderr.trim()),
                });
            }
            Ok(())
        };
        if let Err(e) = starting.await {
            let id = guard.pod().id.clone();
            if let Err(t) = guard.terminate().await {
                tracing::error!(pod = %id, error = %t, "the job's pod could not be confirmed terminated");
            }
            return Err(e);
        }
        let pod = guard.into_pod();
        let watchdog = pod.provider == Provider::RunPod;
        let guards = Guards {
            watchdog,
            linger_s: (watchdog && !job.keep).then_some(job.linger.as_secs()),
            deadline_s: deadline_in.filter(|_| watchdog).map(|d| d.as_secs()),
            lease_expires_at: pod.lease_expires_at,
        };
        Ok(Submitted { id: pod.id.clone(), pod, guards, restored })
    }

    /// What the pod of job `id` says about it. A pod that is not running is reported with the
    /// state it cannot be asked for (`Err`); a pod the provider does not know is an error.
    pub async fn job(&self, id: &PodId, options: &SessionOptions) -> Result<JobReport> {
        let pod = self.get(id).await?;
        Ok(probe(pod, options).await)
    }

    /// Every detached job the providers' pod lists and the pods themselves show: pods gpucloud
    /// launched for jobs (idle-exempt launch tags), each asked over SSH (at most
    /// [`JOB_CALL_TIMEOUT`] each, all at once); pods with no detached job are left out. Providers
    /// that could not be listed are returned beside the jobs.
    pub async fn jobs(&self, options: &SessionOptions) -> (Vec<JobReport>, Vec<(Provider, Error)>) {
        let (pods, failed) = self.list().await;
        let candidates = pods.into_iter().filter(|p| p.idle_exempt() && p.status != PodStatus::Terminated);
        let reports = futures::future::join_all(candidates.map(|pod| {
            let mut options = options.clone();
            if options.identity_file.is_none() {
                options.identity_file = crate::remote::remembered_key(&pod.id);
            }
            async move { probe(pod, &options).await }
        }))
        .await;
        (reports.into_iter().filter(|r| r.state != Ok(JobState::None)).collect(), failed)
    }

    /// The job's log from byte `offset` on (at most [`LOG_CHUNK`] bytes), and its state read just
    /// before: [`LogPiece::is_last`] says when nothing more will come.
    pub async fn job_log_piece(&self, id: &PodId, offset: u64, options: &SessionOptions) -> Result<LogPiece> {
        let pod = self.get(id).await?;
        let session = connect(&pod, options).await?;
        let piece = log_piece(&session, offset).await;
        let _ = session.close().await;
        piece
    }

    /// Follows the job's log from byte `offset`, handing every byte to `sink` exactly once, in
    /// order, until the command has ended and its log is read to the end (returns its exit
    /// status) or `stop` completes (returns `None`). A lost connection is reopened and the log
    /// resumed at the byte after the last one handed over: nothing is lost or repeated. Gives up
    /// after `max_failures` failed reads in a row, or when the pod stops running.
    pub async fn follow_job_log(
        &self,
        id: &PodId,
        mut offset: u64,
        options: &SessionOptions,
        poll: Duration,
        mut sink: impl FnMut(&[u8]) + Send,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Option<i32>> {
        const MAX_FAILURES: u32 = 5;
        tokio::pin!(stop);
        let mut session: Option<RemoteSession> = None;
        let mut failures = 0;
        loop {
            let step = async {
                if session.is_none() {
                    let pod = self.get(id).await?;
                    if !pod.is_ready() {
                        return Err(Error::Ssh {
                            id: id.clone(),
                            message: format!(
                                "the job's pod is {} (it ended before its log was read to the end)",
                                pod.status
                            ),
                        });
                    }
                    session = Some(connect(&pod, options).await?);
                }
                let Some(open) = &session else { unreachable!("connected above") };
                log_piece(open, offset).await
            };
            let piece = tokio::select! {
                piece = step => piece,
                () = &mut stop => {
                    if let Some(s) = session.take() { let _ = s.close().await; }
                    return Ok(None);
                }
            };
            match piece {
                Ok(piece) => {
                    failures = 0;
                    if !piece.bytes.is_empty() {
                        sink(&piece.bytes);
                        offset += piece.bytes.len() as u64;
                    }
                    if piece.is_last() {
                        if let Some(s) = session.take() {
                            let _ = s.close().await;
                        }
                        let JobState::Exited { code } = piece.state else { unreachable!("is_last") };
                        return Ok(Some(code));
                    }
                    if (piece.bytes.len() as u64) == LOG_CHUNK {
                        continue;
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(job = %id, error = %e, failures, "reading the job's log; reconnecting");
                    if let Some(s) = session.take() {
                        let _ = s.close().await;
                    }
                    if failures >= MAX_FAILURES || matches!(e, Error::SshAuth { .. } | Error::NoDirectSsh { .. }) {
                        return Err(e);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = &mut stop => {
                    if let Some(s) = session.take() { let _ = s.close().await; }
                    return Ok(None);
                }
            }
        }
    }

    /// Waits until the job's command has ended and returns its exit status, asking the pod every
    /// `poll`, for at most `timeout` ([`Error::Timeout`]). A pod that stops running first is an
    /// error saying so (its status can no longer be read); a spot pod that leaves `ACTIVE`
    /// unasked, or that its provider no longer has, is [`Error::Interrupted`], seen within one
    /// `poll` (see [`crate::jobs::spot`]; a detached job is not relaunched here: see
    /// [`Fleet::wait_job_recovering`]).
    pub async fn wait_job(
        &self,
        id: &PodId,
        options: &SessionOptions,
        poll: Duration,
        timeout: Duration,
    ) -> Result<i32> {
        let started = Instant::now();
        let waiting = async {
            let mut failures = 0;
            let mut last_running: Option<(Instant, Pod)> = None;
            let interrupted = |sign, last_running: &Option<(Instant, Pod)>| {
                let (at, pod) = last_running.as_ref().map(|(at, pod)| (*at, Some(pod))).unwrap_or((started, None));
                let ran_for = pod
                    .and_then(|p| p.created_at)
                    .and_then(|c| (chrono::Utc::now() - c).to_std().ok())
                    .unwrap_or_default();
                let price = pod.and_then(|p| p.price_per_hour);
                Error::Interrupted {
                    interruptions: vec![Interruption {
                        pod: id.clone(),
                        place: Place { provider: id.provider(), data_center: pod.and_then(|p| p.data_center.clone()) },
                        spot: true,
                        sign,
                        ran_for,
                        detected_within: at.elapsed(),
                        price_per_hour: price,
                        cost: Interruption::estimate_cost(price, ran_for),
                    }],
                }
            };
            loop {
                let report = match self.job(id, options).await {
                    Ok(report) => report,
                    Err(e) if e.is_not_found() && last_running.is_some() => {
                        return Err(interrupted(InterruptionSign::Gone, &last_running));
                    }
                    Err(e) => return Err(e),
                };
                let spot = report.pod.is_spot();
                if spot && !report.pod.is_ready() && report.pod.status != PodStatus::Starting {
                    let sign = InterruptionSign::LeftRunning { status: report.pod.provider_status.clone() };
                    return Err(interrupted(sign, &last_running));
                }
                if spot {
                    last_running = Some((Instant::now(), report.pod.clone()));
                }
                match &report.state {
                    Ok(JobState::Exited { code }) => return Ok(*code),
                    Ok(JobState::None) => {
                        return Err(Error::invalid("job", format!("{id} runs no detached job")));
                    }
                    Ok(JobState::Running) => failures = 0,
                    Err(why) => {
                        if !report.pod.is_ready() {
                            return Err(Error::Ssh {
                                id: id.clone(),
                                message: format!(
                                    "the job's pod is {}: its exit status can no longer be read ({why})",
                                    report.pod.status
                                ),
                            });
                        }
                        failures += 1;
                        if failures >= 5 {
                            return Err(Error::Ssh { id: id.clone(), message: why.clone() });
                        }
                    }
                }
                tokio::time::sleep(poll).await;
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| Error::Timeout { what: format!("job {id}"), waited: started.elapsed() })?
    }

    /// Copies `remote` (relative to the job's directory, or absolute) from the job's pod into
    /// `local`, safely (see [`RemoteSession::download`]).
    pub async fn job_download(
        &self,
        id: &PodId,
        remote: &str,
        local: &std::path::Path,
        options: &SessionOptions,
    ) -> Result<()> {
        let pod = self.get(id).await?;
        let session = connect(&pod, options).await?;
        let result = async {
            let path = if remote.starts_with('/') {
                remote.to_string()
            } else {
                let (_, dir, _) = call(&session, "cat \"$HOME/.gpucloud-job/remote_dir\"".into()).await?;
                let dir = String::from_utf8_lossy(&dir).trim().to_string();
                if dir.is_empty() { remote.to_string() } else { format!("{dir}/{remote}") }
            };
            session.download(&path, local).await
        }
        .await;
        let _ = session.close().await;
        result
    }

    /// Tells the job's watchdog that its results are collected: on RunPod it ends the pod at
    /// once, as a waiter that has what it needs should.
    pub async fn job_collected(&self, id: &PodId, options: &SessionOptions) -> Result<()> {
        let pod = self.get(id).await?;
        let session = connect(&pod, options).await?;
        let result = call(&session, supervisor::collected_script()).await;
        let _ = session.close().await;
        result.map(|_| ())
    }

    /// Cancels the job: its command's process group gets SIGTERM (SIGKILL 10 s later), its
    /// status is recorded (143 unless it recorded its own), and unless `keep`, the pod is
    /// terminated and that confirmed.
    pub async fn cancel_job(&self, id: &PodId, options: &SessionOptions, keep: bool) -> Result<()> {
        let pod = self.get(id).await?;
        if pod.is_ready() {
            let stopped = async {
                let session = connect(&pod, options).await?;
                let result = call(&session, supervisor::cancel_script()).await;
                let _ = session.close().await;
                result
            }
            .await;
            match stopped {
                Ok((0, _, _)) => {}
                Ok((code, _, stderr)) => {
                    if keep {
                        return Err(Error::Ssh {
                            id: id.clone(),
                            message: format!("cancel exited {code}: {}", stderr.trim()),
                        });
                    }
                }
                Err(e) if keep => return Err(e),
                Err(e) => tracing::warn!(job = %id, error = %e, "could not stop the command; terminating the pod"),
            }
        }
        if keep {
            return Ok(());
        }
        self.guard(pod)?.terminate().await
    }
}

async fn log_piece(session: &RemoteSession, offset: u64) -> Result<LogPiece> {
    let (code, bytes, stderr) = call(session, supervisor::logs_script(offset, LOG_CHUNK)).await?;
    let state = parse_state(stderr.lines().next().unwrap_or_default());
    match (code, state) {
        (0, Some(state)) => Ok(LogPiece { bytes, state }),
        (_, Some(JobState::None)) => Err(Error::invalid("job", format!("{} runs no detached job", session.pod()))),
        _ => Err(Error::Ssh {
            id: session.pod().clone(),
            message: format!("reading the job's log failed (exit {code}): {}", stderr.trim()),
        }),
    }
}

/// Asks `pod` about its job.
async fn probe(pod: Pod, options: &SessionOptions) -> JobReport {
    let id = pod.id.clone();
    let mut report = JobReport { id, pod, state: Err(String::new()), log_bytes: None, remote_dir: None };
    if !report.pod.is_ready() {
        report.state = Err(format!("the pod is {}", report.pod.status));
        return report;
    }
    let asked = async {
        let session = connect(&report.pod, options).await?;
        let result = call(&session, supervisor::probe_script()).await;
        let _ = session.close().await;
        result
    };
    match tokio::time::timeout(JOB_CALL_TIMEOUT, asked).await {
        Ok(Ok((0, stdout, _))) => {
            let text = String::from_utf8_lossy(&stdout);
            for line in text.lines() {
                if let Some(state) = line.strip_prefix("state ") {
                    report.state = parse_state(state).ok_or_else(|| format!("unreadable state {state:?}"));
                } else if let Some(bytes) = line.strip_prefix("log ") {
                    report.log_bytes = bytes.trim().parse().ok();
                } else if let Some(dir) = line.strip_prefix("dir ") {
                    report.remote_dir = Some(dir.to_string());
                }
            }
        }
        Ok(Ok((code, _, stderr))) => report.state = Err(format!("the probe exited {code}: {}", stderr.trim())),
        Ok(Err(e)) => report.state = Err(e.to_string()),
        Err(_) => report.state = Err(format!("no answer within {JOB_CALL_TIMEOUT:?}")),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_and_a_piece_is_last_only_when_ended_and_short() {
        assert_eq!(parse_state("running"), Some(JobState::Running));
        assert_eq!(parse_state("exited 3\n"), Some(JobState::Exited { code: 3 }));
        assert_eq!(parse_state("none"), Some(JobState::None));
        assert_eq!(parse_state("exited x"), None);
        let piece = |state, n: usize| LogPiece { bytes: vec![b'a'; n], state };
        assert!(piece(JobState::Exited { code: 0 }, 3).is_last());
        assert!(!piece(JobState::Running, 3).is_last());
        assert!(!piece(JobState::Exited { code: 0 }, LOG_CHUNK as usize).is_last(), "a full chunk may have more");
    }
}
