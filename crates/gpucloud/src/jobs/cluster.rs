//! A job on every node of a cluster, **fail fast**: [`Fleet::run_on_cluster`].
//!
//! The cluster is launched all or nothing ([`Fleet::launch_cluster`], with the environment
//! contract written on every node), then, on every node at once, each over its own SSH session:
//!
//! 1. **sync**: [`ClusterJob::workdir`] is sent to [`ClusterJob::remote_dir`]
//!    ([`crate::remote::sync::sync`], the same rules as a single pod's: ignores, secrets, links);
//!    every node's sync runs at the same time, and each node's [`SyncReport`] is kept;
//! 2. **setup**: [`ClusterJob::setup`] runs in the remote directory with the contract loaded
//!    (`. ~/.gpucloud/env`);
//! 3. **the command**, once every node is set up, in the remote directory with the contract
//!    loaded, its output handed on line by line with the node's rank;
//! 4. **downloads** ([`ClusterJob::downloads`]) from rank 0 or from every node
//!    ([`DownloadFrom`]; every node's into `LOCAL/node-<rank>/`), through the safe download
//!    ([`RemoteSession::download`]): every download is attempted once the command ran, whatever
//!    its status, and failures are collected per node, never costing the other results.
//!
//! **Fail fast**: when a node's sync, setup or command fails (a non-zero exit, a lost
//! connection) or a member leaves `RUNNING` (one cluster summary read per poll interval while the
//! nodes work: `pods.byStatus`), the others are interrupted (SIGINT to their process groups, then
//! SIGKILL, as [`RemoteSession::run_interruptible`] does; a sync in flight is dropped, which ends
//! its connection) and what was not started is not started. The exit status is the first failing
//! node's (its setup's or its command's; 1 when it has none); 0 when every node succeeded. Then
//! the cluster is deleted and the deletion confirmed, unless [`ClusterJob::keep`] is set and every
//! node succeeded. A cancel (the CLI's SIGINT/SIGTERM/SIGHUP) interrupts every node and deletes
//! the cluster too ([`Error::Cancelled`]).
//!
//! **A deadline for the whole job** ([`ClusterJob::deadline`], from the launch to the last
//! download): at the deadline every node is interrupted and the cluster deleted and confirmed
//! ([`Error::Timeout`]); the cluster is launched with a lease of the deadline plus
//! [`DEADLINE_LEASE_MARGIN`] (or its own `ttl` when shorter), as a single pod's job is, so that a
//! reaper deletes it if this process dies.
//!
//! **Per-node logs**: with [`ClusterJob::log_dir`], each node's setup and command output (both
//! streams, byte for byte as they came) is also written to `node-<rank>.log` in that directory.
//!
//! **A member that leaves `RUNNING`** ([`ClusterJob::on_member_failure`]): with
//! [`MemberFailurePolicy::Abort`] (the default) it fails the job fast as above. With
//! [`MemberFailurePolicy::Recreate`] the cluster is deleted and the deletion confirmed (RunPod
//! has no resize) and the whole job runs again on a new cluster (launch, sync, setup, command),
//! at most `max` times; past that it ends as `Abort` does. A node lost without an exit status
//! (its connection cut) is checked against the cluster (a few reads a poll interval apart)
//! before it is taken for its own failure. A node's sync, setup or command failing with a status
//! of its own is the job's failure and never recreates. Each recreation (the old cluster, which
//! members, why, how long that attempt ran) is in [`ClusterJobOutcome::recreations`]; the
//! deadline covers every attempt.
//!
//! Not yet: detached cluster jobs, checkpoints.

use super::{DEADLINE_LEASE_MARGIN, DEFAULT_REMOTE_DIR, DownloadFailure};
use crate::Fleet;
use crate::fleet::cluster::ClusterRequest;
use crate::model::PodId;
use crate::model::cluster::{Cluster, ClusterId, ClusterNode, ENV_FILE_PATH};
use crate::model::error::{Error, Result};
use crate::remote::sync::{SyncMethod, SyncReport};
use crate::remote::{OutputLine, OutputSink, RemoteCommand, RemoteSession, Stream};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Which nodes [`ClusterJob::downloads`] are copied from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadFrom {
    /// Rank 0 only, into each download's local directory as given.
    #[default]
    Primary,
    /// Every node, each into `LOCAL/node-<rank>/`.
    All,
}

/// What a cluster job does when a member leaves `RUNNING` while it runs
/// ([`ClusterJob::on_member_failure`]). A node's command (or setup) failing with an exit status
/// is the job's own failure and always ends it, whatever the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum MemberFailurePolicy {
    /// Stop every node, delete the cluster and confirm it, and end with the failure.
    #[default]
    Abort,
    /// Stop every node, delete the cluster and confirm it (RunPod has no resize), then run the
    /// whole job again on a new cluster (launch, sync, setup, command), at most `max` times; a
    /// member leaving once more after that ends the job as [`MemberFailurePolicy::Abort`] does.
    Recreate {
        /// How many new clusters at most.
        max: u32,
    },
}

/// One recreation of a cluster job's cluster ([`MemberFailurePolicy::Recreate`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterRecreation {
    /// The cluster that was deleted (and confirmed deleted).
    pub cluster: ClusterId,
    /// The members that were not `RUNNING`: rank (`None`: never ranked), pod, status.
    pub members: Vec<(Option<u32>, PodId, String)>,
    /// Why: what the cluster's summary said (`pods.byStatus`).
    pub reason: String,
    /// How long that attempt ran, from the start of its launch to the member's departure seen.
    #[serde(serialize_with = "as_secs")]
    pub ran_for: Duration,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A job to run on every node of a new cluster.
#[derive(Debug, Clone)]
pub struct ClusterJob {
    /// The cluster; its `session` is required (everything runs over SSH).
    pub cluster: ClusterRequest,
    /// The command, as arguments (quoted for the node's shell), run in [`ClusterJob::remote_dir`].
    pub command: Vec<String>,
    /// Keep the cluster when every node succeeded (it is deleted after any failure, a cancel and
    /// the deadline).
    pub keep: bool,
    /// A local directory synced to [`ClusterJob::remote_dir`] on every node, all at once, before
    /// the setup ([`crate::remote::sync`]).
    pub workdir: Option<PathBuf>,
    /// Where the job runs on each node (default [`DEFAULT_REMOTE_DIR`], relative to the login
    /// directory).
    pub remote_dir: String,
    /// A shell script run on every node before the command, in the remote directory, with the
    /// cluster's environment loaded; its failure on any node fails the job fast (no command runs).
    pub setup: Option<String>,
    /// `(remote path, local directory)` pairs copied back once the command ran, whatever its
    /// status; a relative remote path is relative to the remote directory. From rank 0 or from
    /// every node: [`ClusterJob::download_from`].
    pub downloads: Vec<(String, PathBuf)>,
    /// Which nodes the downloads come from.
    pub download_from: DownloadFrom,
    /// The whole job's deadline, from the launch to the last download; also the cluster's lease
    /// (plus [`DEADLINE_LEASE_MARGIN`]).
    pub deadline: Option<Duration>,
    /// A local directory (created if missing) where each node's output is also written, to
    /// `node-<rank>.log`; `None`: no log files. After a recreation the earlier attempt's log is
    /// kept as `node-<rank>.attempt-<n>.log` (`n` from 1).
    pub log_dir: Option<PathBuf>,
    /// What to do when a member leaves `RUNNING` while the job runs (default: abort).
    pub on_member_failure: MemberFailurePolicy,
}

impl ClusterJob {
    /// Runs `command` on every node of a cluster launched by `cluster`; nothing synced, no setup,
    /// no downloads, no deadline, no log files.
    pub fn new<I, S>(cluster: ClusterRequest, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            cluster,
            command: command.into_iter().map(Into::into).collect(),
            keep: false,
            workdir: None,
            remote_dir: DEFAULT_REMOTE_DIR.into(),
            setup: None,
            downloads: Vec::new(),
            download_from: DownloadFrom::Primary,
            deadline: None,
            log_dir: None,
            on_member_failure: MemberFailurePolicy::Abort,
        }
    }

    /// The launch as [`Fleet::run_on_cluster`] sends it: [`ClusterJob::cluster`] with the
    /// deadline's lease (the deadline plus [`DEADLINE_LEASE_MARGIN`], or the request's own `ttl`
    /// when shorter), as [`super::Job::launch_request`] does for one pod.
    pub fn launch_request(&self) -> ClusterRequest {
        let mut request = self.cluster.clone();
        if let Some(deadline) = self.deadline {
            let lease = deadline.saturating_add(DEADLINE_LEASE_MARGIN).min(crate::model::lease::MAX_TTL);
            request.ttl = Some(request.ttl.map_or(lease, |ttl| ttl.min(lease)));
        }
        request
    }

    /// [`ClusterJob::launch_request`] for a launch `elapsed` into the job (a recreation): the
    /// lease covers what is left of the deadline, plus the margin.
    fn launch_request_within(&self, elapsed: Duration) -> ClusterRequest {
        let mut job = self.clone();
        job.deadline = self.deadline.map(|d| d.saturating_sub(elapsed).max(Duration::from_secs(1)));
        job.launch_request()
    }

    /// Where the log of the node of `rank` is written, with [`ClusterJob::log_dir`].
    pub fn log_path(&self, rank: u32) -> Option<PathBuf> {
        self.log_dir.as_ref().map(|dir| dir.join(format!("node-{rank}.log")))
    }

    /// The remote path of a download (relative ones are in the remote directory).
    fn remote_path(&self, remote: &str) -> String {
        if remote.starts_with('/') { remote.to_string() } else { format!("{}/{remote}", self.remote_dir) }
    }

    /// Every check made before any request: an error names the field.
    fn validate(&self) -> Result<()> {
        if self.cluster.session.is_none() {
            return Err(Error::invalid(
                "session",
                "a cluster job runs its command over SSH: set ClusterRequest::session",
            ));
        }
        if self.command.is_empty() {
            return Err(Error::invalid("command", "is empty: name the program to run"));
        }
        if let Some(dir) = &self.workdir
            && !dir.is_dir()
        {
            return Err(Error::invalid("workdir", format!("{} is not a directory", dir.display())));
        }
        if self.remote_dir.trim().is_empty() {
            return Err(Error::invalid("remote_dir", "is empty"));
        }
        for (remote, local) in &self.downloads {
            if remote.trim().is_empty() {
                return Err(Error::invalid("downloads", "a remote path is empty"));
            }
            if local.as_os_str().is_empty() {
                return Err(Error::invalid("downloads", format!("the local directory for {remote} is empty")));
            }
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(Error::invalid("deadline", "must be more than zero"));
        }
        if let Some(dir) = &self.log_dir {
            create_log_dir(dir)
                .map_err(|e| Error::invalid("log_dir", format!("{} cannot be created: {e}", dir.display())))?;
        }
        Ok(())
    }
}

/// The part of a cluster job a node failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClusterPhase {
    /// Connecting to the node over SSH.
    Connect,
    /// Syncing the workdir.
    Sync,
    /// The setup script.
    Setup,
    /// The command.
    Command,
}

/// What a cluster job did on one node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeReport {
    /// The node's rank.
    pub rank: u32,
    /// The member pod.
    pub pod: PodId,
    /// What the sync sent to this node (with [`ClusterJob::workdir`], once it finished).
    pub sync: Option<SyncReport>,
    /// The setup script's exit status (`None`: no setup, or it did not run to its end).
    pub setup_exit_code: Option<i32>,
    /// The command's exit status (`None`: it did not run, or did not run to its end: interrupted
    /// by the fail-fast rule, a cancel or the deadline, or its connection was lost).
    pub exit_code: Option<i32>,
    /// Why the node failed without an exit status (a lost connection, a failed sync), if it did.
    pub error: Option<String>,
    /// The node's log file ([`ClusterJob::log_dir`]).
    pub log: Option<PathBuf>,
    /// The downloads from this node that failed (each was attempted; the others were written).
    pub download_errors: Vec<DownloadFailure>,
}

/// What a cluster job did.
#[derive(Debug)]
pub struct ClusterJobOutcome {
    /// The cluster it ran on (deleted unless kept).
    pub cluster: Cluster,
    /// Each node's command exit status by rank; `None` for a node whose command did not run to
    /// its end (interrupted by the fail-fast rule or a cancel, a lost connection, or a failure
    /// before the command).
    pub exit_codes: BTreeMap<u32, Option<i32>>,
    /// What happened on each node, by rank.
    pub nodes: BTreeMap<u32, NodeReport>,
    /// The first node to fail: its rank, and its exit status (the setup's or the command's;
    /// `None`: it failed without one, a lost connection or a failed sync).
    pub first_failure: Option<(u32, Option<i32>)>,
    /// Where the first failure happened.
    pub failed_phase: Option<ClusterPhase>,
    /// A member left `RUNNING` while the job ran (what the cluster's summary said); the job was
    /// stopped then.
    pub member_left: Option<String>,
    /// The job's exit status: the first failing node's (1 when it has none, or a member left
    /// `RUNNING` first), else 0.
    pub exit_code: i32,
    /// Whether the cluster was kept ([`ClusterJob::keep`] and every node succeeded).
    pub kept: bool,
    /// Why the cluster's deletion could not be confirmed, if it could not (it may still bill).
    pub deletion_error: Option<Error>,
    /// The clusters deleted and replaced because a member left `RUNNING`
    /// ([`MemberFailurePolicy::Recreate`]), oldest first; [`ClusterJobOutcome::cluster`] is the
    /// last one.
    pub recreations: Vec<ClusterRecreation>,
}

impl ClusterJobOutcome {
    /// Every failed download, with the rank of the node it came from.
    pub fn download_errors(&self) -> Vec<(u32, &DownloadFailure)> {
        self.nodes.iter().flat_map(|(rank, node)| node.download_errors.iter().map(move |d| (*rank, d))).collect()
    }
}

/// Why the job was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    Cancelled,
    Deadline,
}

/// What the nodes share while they work: the stop signal and the first failure.
struct Shared<'a> {
    stop: watch::Sender<bool>,
    /// Why the job was stopped from outside (a cancel, the deadline), once it was.
    outside: watch::Sender<Option<Stopped>>,
    first_failure: Mutex<Option<(u32, Option<i32>, ClusterPhase)>>,
    reports: Mutex<BTreeMap<u32, NodeReport>>,
    output: &'a (dyn Fn(u32, OutputLine) + Sync),
}

impl Shared<'_> {
    /// Completes once the job is told to stop (a failure elsewhere, a cancel, the deadline).
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }

    fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Completes once the job is cancelled or past its deadline.
    fn stopped_from_outside(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut outside = self.outside.subscribe();
        async move {
            let _ = outside.wait_for(Option::is_some).await;
        }
    }

    fn is_stopped_from_outside(&self) -> bool {
        self.outside.borrow().is_some()
    }

    /// Cancelled or past the deadline: every node is told to stop.
    fn stop_from_outside(&self, why: Stopped) {
        self.outside.send_if_modified(|stopped| {
            stopped.get_or_insert(why);
            true
        });
        self.stop.send_replace(true);
    }

    /// A node failed: the first failure is kept, and every other node is told to stop.
    fn fail(&self, rank: u32, code: Option<i32>, phase: ClusterPhase, error: Option<String>) {
        if let Some(error) = &error {
            tracing::warn!(rank, ?phase, %error, "a node of the cluster job failed");
        }
        self.first_failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert((rank, code, phase));
        self.update(rank, |report| {
            if report.error.is_none() {
                report.error = error;
            }
        });
        self.stop.send_replace(true);
    }

    fn update(&self, rank: u32, change: impl FnOnce(&mut NodeReport)) {
        if let Some(report) = self.reports.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&rank) {
            change(report);
        }
    }
}

/// Hands a node's output on with its rank, and writes its bytes to the node's log file.
struct NodeSink<'s> {
    rank: u32,
    output: &'s (dyn Fn(u32, OutputLine) + Sync),
    log: &'s Mutex<Option<std::fs::File>>,
}

impl OutputSink for NodeSink<'_> {
    fn line(&mut self, line: OutputLine) {
        (self.output)(self.rank, line);
    }

    fn bytes(&mut self, _stream: Stream, bytes: &[u8]) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = log.as_mut()
            && let Err(e) = std::io::Write::write_all(file, bytes)
        {
            tracing::warn!(rank = self.rank, error = %e, "writing the node's log failed; its log stops here");
            *log = None;
        }
    }
}

/// Runs `script` in the remote directory with the cluster's environment loaded.
fn in_job_dir(job: &ClusterJob, script: String) -> RemoteCommand {
    let mut command = RemoteCommand::script(format!(". \"$HOME/{ENV_FILE_PATH}\" && {script}"));
    command.cwd = Some(job.remote_dir.clone());
    command
}

/// The rank of a node (a ready cluster's nodes all have one).
fn rank_of(node: &ClusterNode) -> u32 {
    node.rank.unwrap_or(u32::MAX)
}

impl Fleet {
    /// Launches `job.cluster`, then on every node syncs the workdir, runs the setup and the
    /// command, fail fast, hands each output line to `output` with the node's rank, downloads
    /// the results, and deletes the cluster (see [the module](crate::jobs::cluster)). `cancel`
    /// completing interrupts every node; the cluster is then deleted and [`Error::Cancelled`]
    /// returned.
    ///
    /// Errors: [`Error::InvalidInput`] naming the field before any request (no session, an empty
    /// command, a workdir that is not a directory, a log directory that cannot be created, ...);
    /// the launch's errors as [`Fleet::launch_cluster`] has them (nothing left running);
    /// [`Error::Timeout`] past [`ClusterJob::deadline`] and [`Error::Cancelled`] (the cluster
    /// deleted and confirmed; when the deletion cannot be confirmed, that error instead). A node
    /// that fails is an outcome, not an error.
    pub async fn run_on_cluster(
        &self,
        job: &ClusterJob,
        output: &(dyn Fn(u32, OutputLine) + Sync),
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<ClusterJobOutcome> {
        job.validate()?;
        // Before anything bills: every node's session will need these.
        crate::remote::check_state_dirs()?;
        let started = Instant::now();
        let shared = Shared {
            stop: watch::channel(false).0,
            outside: watch::channel(None).0,
            first_failure: Mutex::new(None),
            reports: Mutex::new(BTreeMap::new()),
            output,
        };
        let stopper = async {
            let deadline = job.deadline.map(|d| started + d);
            let expired = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let why = tokio::select! {
                () = cancel => Stopped::Cancelled,
                () = expired => Stopped::Deadline,
            };
            shared.stop_from_outside(why);
            std::future::pending::<std::convert::Infallible>().await
        };
        tokio::pin!(stopper);
        let stopped_by = || *shared.outside.borrow();
        let stop_error = |why: Stopped| match why {
            Stopped::Cancelled => Error::Cancelled,
            Stopped::Deadline => Error::Timeout { what: "the cluster job".into(), waited: started.elapsed() },
        };

        let mut recreations: Vec<ClusterRecreation> = Vec::new();
        loop {
            let attempt_started = Instant::now();
            if !recreations.is_empty() {
                // A new attempt: the failure that ended the last one is forgotten.
                *shared.first_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                shared.stop.send_replace(false);
            }
            // The launch deletes (and confirms) its cluster itself when told to stop.
            let request = job.launch_request_within(started.elapsed());
            let launched = tokio::select! {
                launched = self.launch_cluster_with_progress(&request, |_| {}, shared.stopped()) => launched,
                never = &mut stopper => match never {},
            };
            let cluster = match (launched, stopped_by()) {
                (Ok(cluster), None) => cluster,
                (Ok(cluster), Some(why)) => {
                    // Ready just as it was stopped: it is ours to delete.
                    self.delete_cluster(&cluster.id).await?;
                    return Err(stop_error(why));
                }
                (Err(Error::Cancelled), Some(why)) => return Err(stop_error(why)),
                (Err(e), _) => return Err(e),
            };

            let logs: Vec<Mutex<Option<std::fs::File>>> = cluster
                .nodes
                .iter()
                .map(|node| {
                    let path = job.log_path(rank_of(node))?;
                    if !recreations.is_empty() {
                        // The earlier attempt's log is kept beside (a rename never follows a link).
                        let kept = path.with_extension(format!("attempt-{}.log", recreations.len()));
                        let _ = std::fs::rename(&path, kept);
                    }
                    match open_log(&path) {
                        Ok(file) => Some(file),
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "the node's log file cannot be written");
                            None
                        }
                    }
                })
                .map(Mutex::new)
                .collect();
            *shared.reports.lock().unwrap_or_else(|e| e.into_inner()) = cluster
                .nodes
                .iter()
                .map(|node| {
                    let rank = rank_of(node);
                    let report = NodeReport {
                        rank,
                        pod: node.pod.id.clone(),
                        sync: None,
                        setup_exit_code: None,
                        exit_code: None,
                        error: None,
                        log: job.log_path(rank),
                        download_errors: Vec::new(),
                    };
                    (rank, report)
                })
                .collect();

            let work = self.work_on_nodes(job, &cluster, &shared, &logs);
            // Once cancelled or past the deadline, the nodes have this long to end their commands (SIGINT, then
            // SIGKILL): then their work is dropped, and their sessions with it.
            let grace = async {
                shared.stopped_from_outside().await;
                tokio::time::sleep(crate::remote::INTERRUPT_GRACE * 2 + Duration::from_secs(5)).await;
            };
            let (sessions, mut member_left) = tokio::select! {
                done = work => done,
                () = grace => (Vec::new(), None),
                never = &mut stopper => match never {},
            };
            let ran_for = attempt_started.elapsed();
            for log in &logs {
                if let Some(file) = log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    let _ = std::io::Write::flush(file);
                }
            }

            let why = stopped_by();
            let first = *shared.first_failure.lock().unwrap_or_else(|e| e.into_inner());
            // A departure recreates only with a recreation left and no node failing with a status of
            // its own.
            let may_recreate = matches!(job.on_member_failure, MemberFailurePolicy::Recreate { max }
                if u32::try_from(recreations.len()).unwrap_or(u32::MAX) < max)
                && why.is_none()
                && first.is_none_or(|(_, code, _)| code.is_none());
            // A node lost without an exit status (its connection cut) may be a member that died
            // before the watch saw it: whatever the policy, the cluster is read to tell, so the
            // outcome names the member rather than only a lost connection.
            let lost_a_node = first.is_some_and(|(_, code, _)| code.is_none());
            let mut departed = Vec::new();
            if why.is_none() && ((may_recreate && member_left.is_some()) || (member_left.is_none() && lost_a_node)) {
                let (left, members) = tokio::select! {
                    read = self.departed_members(&cluster, member_left.is_none()) => read,
                    never = &mut stopper => match never {},
                };
                member_left = member_left.or(left);
                departed = members;
            }
            let recreate = may_recreate && member_left.is_some() && stopped_by().is_none();
            let kept = job.keep && first.is_none() && member_left.is_none() && why.is_none();
            // The sessions close alongside the deletion, never before it: a close that hangs must not
            // keep the cluster billing.
            let closing = futures::future::join_all(sessions.into_iter().map(|session| async move {
                if let Err(e) = session.close().await {
                    tracing::debug!(error = %e, "closing a node's session");
                }
            }));
            let deletion_error = if kept {
                closing.await;
                None
            } else {
                let (deleted, _) = tokio::join!(self.delete_cluster(&cluster.id), closing);
                deleted.err()
            };
            if let Some(why) = stopped_by() {
                return match deletion_error {
                    Some(error) => Err(error),
                    None => Err(stop_error(why)),
                };
            }
            if recreate && deletion_error.is_none() {
                let reason = member_left.unwrap_or_default();
                tracing::warn!(cluster = %cluster.id, %reason, "a member left RUNNING: the cluster is deleted and the job recreated");
                recreations.push(ClusterRecreation { cluster: cluster.id.clone(), members: departed, reason, ran_for });
                continue;
            }
            let nodes = std::mem::take(&mut *shared.reports.lock().unwrap_or_else(|e| e.into_inner()));
            let exit_codes = nodes.iter().map(|(rank, node)| (*rank, node.exit_code)).collect();
            let exit_code = match (first, &member_left) {
                (Some((_, Some(code), _)), _) => code,
                (Some(_), _) | (None, Some(_)) => 1,
                (None, None) => 0,
            };
            return Ok(ClusterJobOutcome {
                cluster,
                exit_codes,
                nodes,
                first_failure: first.map(|(rank, code, _)| (rank, code)),
                failed_phase: first.map(|(_, _, phase)| phase),
                member_left,
                exit_code,
                kept,
                deletion_error,
                recreations,
            });
        }
    }

    /// The members of `cluster` that are not `RUNNING` (rank, pod, status), and what its summary
    /// says when one is not; with `wait`, a few reads a poll interval apart (a connection lost
    /// just before the provider's status changes).
    async fn departed_members(
        &self,
        cluster: &Cluster,
        wait: bool,
    ) -> (Option<String>, Vec<(Option<u32>, PodId, String)>) {
        let Ok(provisioner) = self.provisioner(cluster.provider) else { return (None, Vec::new()) };
        let reads = if wait { 3 } else { 1 };
        for read in 0..reads {
            if read > 0 {
                tokio::time::sleep(provisioner.poll_interval()).await;
            }
            match provisioner.get_cluster(&cluster.id).await {
                Ok(now) if !now.all_running() => {
                    let members = now
                        .nodes
                        .iter()
                        .filter(|n| n.pod.status != crate::model::PodStatus::Running)
                        .map(|n| (n.rank, n.pod.id.clone(), format!("{:?}", n.pod.status)))
                        .collect();
                    return (Some(format!("nodes by status: {}", now.progress_text())), members);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(cluster = %cluster.id, %error, "reading the cluster after the job failed")
                }
            }
        }
        (None, Vec::new())
    }

    /// The nodes' work on a ready cluster: every node prepared (connected, synced, set up), then
    /// the command on every node, then the downloads; a member leaving `RUNNING` stops it.
    /// Returns the open sessions (for the caller to close alongside the deletion) and what the
    /// cluster said when a member left.
    async fn work_on_nodes(
        &self,
        job: &ClusterJob,
        cluster: &Cluster,
        shared: &Shared<'_>,
        logs: &[Mutex<Option<std::fs::File>>],
    ) -> (Vec<RemoteSession>, Option<String>) {
        let member_left = Mutex::new(None::<String>);
        let watch = async {
            let Ok(provisioner) = self.provisioner(cluster.provider) else { return std::future::pending().await };
            loop {
                tokio::time::sleep(provisioner.poll_interval()).await;
                match provisioner.cluster_summary(&cluster.id).await {
                    Ok(summary) if !summary.all_running() => {
                        *member_left.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(format!("nodes by status: {}", summary.progress_text()));
                        shared.stop.send_replace(true);
                        return;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(cluster = %cluster.id, %error, "reading the cluster during the job failed")
                    }
                }
            }
        };
        let phases = async {
            // 1: connect to every node at once.
            let connected = futures::future::join_all(
                cluster.nodes.iter().map(|node| async move { self.connect_node(job, node, shared).await }),
            )
            .await;
            let sessions: Vec<(u32, RemoteSession)> =
                cluster.nodes.iter().map(rank_of).zip(connected).filter_map(|(rank, s)| Some((rank, s?))).collect();
            // 2: the workdir on every node, then the setup on every node at once.
            if !shared.is_stopped() {
                sync_nodes(job, &sessions, shared).await;
            }
            if let Some(setup) = job.setup.as_ref().filter(|_| !shared.is_stopped()) {
                futures::future::join_all(
                    sessions
                        .iter()
                        .zip(logs)
                        .map(|((rank, session), log)| setup_node(job, setup, *rank, session, shared, log)),
                )
                .await;
            }
            if shared.is_stopped() {
                return (sessions, false);
            }
            // 3: the command on every node once all are set up.
            let command = in_job_dir(job, RemoteCommand::new(job.command.clone()).to_shell());
            futures::future::join_all(sessions.iter().zip(logs).map(|((rank, session), log)| {
                let command = &command;
                async move {
                    let rank = *rank;
                    let mut sink = NodeSink { rank, output: shared.output, log };
                    match session.run_interruptible(command, &mut sink, shared.stopped()).await {
                        Ok(result) => {
                            shared.update(rank, |r| r.exit_code = Some(result.exit_code));
                            if result.exit_code != 0 {
                                shared.fail(rank, Some(result.exit_code), ClusterPhase::Command, None);
                            }
                        }
                        // Interrupted: by the fail-fast rule, a cancel or the deadline.
                        Err(Error::Cancelled) => {}
                        Err(error) => shared.fail(rank, None, ClusterPhase::Command, Some(error.to_string())),
                    }
                }
            }))
            .await;
            (sessions, true)
        };
        let (sessions, command_ran) = {
            tokio::pin!(phases);
            tokio::select! {
                done = &mut phases => done,
                () = watch => phases.await,
            }
        };
        let member_left = member_left.into_inner().unwrap_or_else(|e| e.into_inner());
        // 4: downloads, once the command ran on every node (whatever its status): not after a
        // failure before the command, a member that left, a cancel or the deadline.
        if !job.downloads.is_empty() && command_ran && member_left.is_none() && !shared.is_stopped_from_outside() {
            let from = sessions.iter().filter(|(rank, _)| job.download_from == DownloadFrom::All || *rank == 0);
            let downloads = futures::future::join_all(from.map(|(rank, session)| async move {
                for (remote, local) in &job.downloads {
                    let local = download_dir(local, job.download_from, *rank);
                    if let Err(e) = session.download(&job.remote_path(remote), &local).await {
                        let failure = DownloadFailure { remote: remote.clone(), local, error: e.to_string() };
                        shared.update(*rank, |r| r.download_errors.push(failure));
                    }
                }
            }));
            tokio::select! {
                _ = downloads => {}
                () = shared.stopped_from_outside() => {}
            }
        }
        (sessions.into_iter().map(|(_, session)| session).collect(), member_left)
    }

    /// Connects to one node; `None` when it could not (the failure recorded in `shared`) or the
    /// job was stopped first.
    async fn connect_node(&self, job: &ClusterJob, node: &ClusterNode, shared: &Shared<'_>) -> Option<RemoteSession> {
        let options = job.cluster.session.clone().unwrap_or_default();
        let connected = tokio::select! {
            connected = RemoteSession::connect(&node.pod, &options) => connected,
            () = shared.stopped() => return None,
        };
        match connected {
            Ok(session) => Some(session),
            Err(e) => {
                shared.fail(rank_of(node), None, ClusterPhase::Connect, Some(e.to_string()));
                None
            }
        }
    }
}

/// The fewest nodes a workdir is relayed to from rank 0 rather than synced to each from here.
/// Two nodes gain nothing from the relay's extra step (its key, its second copy in a row).
pub const RELAY_MIN_NODES: usize = 3;

/// Sends the workdir to every node ([`ClusterJob::workdir`]; without one, makes the remote
/// directory on each). From [`RELAY_MIN_NODES`] nodes on, it is synced to rank 0 alone and
/// relayed from there to the others ([`crate::remote::relay`]), so this machine's uplink carries
/// it once; a node the relay could not reach (or every node, when rank 0 cannot relay: no `ssh`,
/// `ssh-keygen` or `tar` there) is synced from here, as with fewer nodes. Failures are recorded
/// in `shared`.
async fn sync_nodes(job: &ClusterJob, sessions: &[(u32, RemoteSession)], shared: &Shared<'_>) {
    let Some(dir) = &job.workdir else {
        futures::future::join_all(sessions.iter().map(|(rank, session)| make_remote_dir(job, *rank, session, shared)))
            .await;
        return;
    };
    async fn direct(job: &ClusterJob, dir: &Path, targets: Vec<&(u32, RemoteSession)>, shared: &Shared<'_>) {
        futures::future::join_all(
            targets.into_iter().map(|(rank, session)| sync_node(job, dir, *rank, session, shared)),
        )
        .await;
    }
    let primary = sessions.iter().find(|(rank, _)| *rank == 0);
    let Some(primary) = primary.filter(|_| sessions.len() >= RELAY_MIN_NODES) else {
        direct(job, dir, sessions.iter().collect(), shared).await;
        return;
    };
    let Some((report, listing)) = sync_node(job, dir, 0, &primary.1, shared).await else { return };
    let others: Vec<&(u32, RemoteSession)> = sessions.iter().filter(|(rank, _)| *rank != 0).collect();
    let targets: Vec<&RemoteSession> = others.iter().map(|(_, session)| session).collect();
    // What the sync put there, not whatever else rank 0's remote directory holds.
    match crate::remote::relay::relay(&primary.1, &job.remote_dir, &listing, &targets, shared.stopped()).await {
        Ok(results) => {
            let mut unreached = Vec::new();
            for (node, result) in others.into_iter().zip(results) {
                match result {
                    Ok(()) => shared
                        .update(node.0, |r| r.sync = Some(SyncReport { method: SyncMethod::Relay, ..report.clone() })),
                    Err(Error::Cancelled) => {}
                    Err(error) => {
                        tracing::info!(rank = node.0, %error, "the relay did not reach this node: syncing it from here");
                        unreached.push(node);
                    }
                }
            }
            direct(job, dir, unreached, shared).await;
        }
        Err(why) => {
            tracing::info!(%why, "syncing every node from here");
            direct(job, dir, others, shared).await;
        }
    }
}

/// Syncs the workdir to one node; its report and what the remote directory holds of the sync
/// ([`crate::remote::sync::sync_listing`]), or `None` when it failed (recorded in `shared`) or
/// the job was stopped first.
async fn sync_node(
    job: &ClusterJob,
    dir: &Path,
    rank: u32,
    session: &RemoteSession,
    shared: &Shared<'_>,
) -> Option<(SyncReport, Vec<String>)> {
    let synced = tokio::select! {
        synced = crate::remote::sync::sync_listing(session, dir, &job.remote_dir) => synced,
        () = shared.stopped() => return None,
    };
    match synced {
        Ok((report, listing)) => {
            shared.update(rank, |r| r.sync = Some(report.clone()));
            Some((report, listing))
        }
        Err(e) => {
            shared.fail(rank, None, ClusterPhase::Sync, Some(e.to_string()));
            None
        }
    }
}

/// Makes the remote directory on one node (the command runs in it: it must exist).
async fn make_remote_dir(job: &ClusterJob, rank: u32, session: &RemoteSession, shared: &Shared<'_>) {
    let made = session.output(&format!("mkdir -p {}", crate::remote::quote(&job.remote_dir))).await;
    match made {
        Ok((0, _, _)) => {}
        Ok((code, _, stderr)) => {
            let error = format!("creating {} exited {code}: {}", job.remote_dir, stderr.trim());
            shared.fail(rank, None, ClusterPhase::Sync, Some(error));
        }
        Err(e) => shared.fail(rank, None, ClusterPhase::Sync, Some(e.to_string())),
    }
}

/// Runs the setup on one node; a non-zero status or an error is recorded in `shared`.
async fn setup_node(
    job: &ClusterJob,
    setup: &str,
    rank: u32,
    session: &RemoteSession,
    shared: &Shared<'_>,
    log: &Mutex<Option<std::fs::File>>,
) {
    let mut sink = NodeSink { rank, output: shared.output, log };
    match session.run_interruptible(&in_job_dir(job, setup.to_string()), &mut sink, shared.stopped()).await {
        Ok(result) => {
            shared.update(rank, |r| r.setup_exit_code = Some(result.exit_code));
            if result.exit_code != 0 {
                shared.fail(rank, Some(result.exit_code), ClusterPhase::Setup, None);
            }
        }
        Err(Error::Cancelled) => {}
        Err(e) => shared.fail(rank, None, ClusterPhase::Setup, Some(e.to_string())),
    }
}

/// Creates the log directory `dir` and its missing parents private to this user (0700): the logs
/// carry whatever the job prints, secrets included (and a missing state directory made here
/// would otherwise stay readable by everyone).
fn create_log_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens a node's log file new, private to this user (0600): what was at `path` (an earlier
/// run's log) is removed first, and a link put there meanwhile is never followed (nothing
/// outside the log directory is ever truncated or written).
fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Where downloads from the node of `rank` go, for `local` ([`DownloadFrom`]).
pub fn download_dir(local: &Path, from: DownloadFrom, rank: u32) -> PathBuf {
    match from {
        DownloadFrom::Primary => local.to_path_buf(),
        DownloadFrom::All => local.join(format!("node-{rank}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_jobs_lease_is_its_deadline_plus_the_margin_or_its_own_shorter_ttl() {
        let mut job = ClusterJob::new(ClusterRequest::new("H100_80GB", 8, 2, "job"), ["true"]);
        assert_eq!(job.launch_request().ttl, None, "no deadline, no lease");
        job.deadline = Some(Duration::from_secs(600));
        assert_eq!(job.launch_request().ttl, Some(Duration::from_secs(600) + DEADLINE_LEASE_MARGIN));
        job.cluster.ttl = Some(Duration::from_secs(120));
        assert_eq!(job.launch_request().ttl, Some(Duration::from_secs(120)), "the shorter of the two");
    }

    #[test]
    fn node_logs_are_private_and_never_written_through_a_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        let root = std::env::temp_dir().join(format!("gpucloud-cluster-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut job = ClusterJob::new(ClusterRequest::new("H100_80GB", 8, 2, "job"), ["true"]);
        job.cluster.session = Some(crate::remote::SessionOptions::default());
        job.log_dir = Some(root.join("state/logs/run"));
        job.validate().unwrap();
        for dir in ["state", "state/logs", "state/logs/run"] {
            assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
        }
        let log = job.log_path(0).unwrap();
        std::io::Write::write_all(&mut open_log(&log).unwrap(), b"secret").unwrap();
        assert_eq!(mode(&log), 0o600);
        // A link planted at a log's path: removed, never followed (its target untouched).
        let victim = root.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = job.log_path(1).unwrap();
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        std::io::Write::write_all(&mut open_log(&planted).unwrap(), b"node 1").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(std::fs::symlink_metadata(&planted).unwrap().is_file());
        assert_eq!((mode(&planted), std::fs::read_to_string(&planted).unwrap().as_str()), (0o600, "node 1"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn downloads_from_every_node_go_to_a_folder_per_rank() {
        let local = Path::new("results");
        assert_eq!(download_dir(local, DownloadFrom::Primary, 0), PathBuf::from("results"));
        assert_eq!(download_dir(local, DownloadFrom::All, 3), PathBuf::from("results/node-3"));
    }
}
