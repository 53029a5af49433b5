//! One command on every node of a cluster, **fail fast**: [`Fleet::run_on_cluster`].
//!
//! The cluster is launched all or nothing ([`Fleet::launch_cluster`], with the environment
//! contract written on every node), the command runs on every node at once with the contract
//! loaded (`. ~/.gpucloud/env`), its output handed on line by line with the node's rank, and
//! when any node's command fails (a non-zero exit, a lost connection) or a member leaves
//! `RUNNING` (one cluster summary read per poll interval while the job runs: `pods.byStatus`),
//! the others are interrupted (SIGINT to their process groups, then SIGKILL, as
//! [`RemoteSession::run_interruptible`] does).
//! The exit status is the first failing node's; 0 when every node succeeded. Then the cluster is
//! deleted and the deletion confirmed, unless [`ClusterJob::keep`] is set and every node
//! succeeded. A cancel (the CLI's SIGINT/SIGTERM/SIGHUP) interrupts every node and deletes the
//! cluster too. Not yet: workdir sync, setup and downloads on clusters, and a `recreate` policy.

use crate::Fleet;
use crate::fleet::cluster::ClusterRequest;
use crate::model::cluster::{Cluster, ENV_FILE_PATH};
use crate::model::error::{Error, Result};
use crate::remote::{OutputLine, RemoteCommand, RemoteSession};
use std::collections::BTreeMap;

/// A command to run on every node of a new cluster.
#[derive(Debug, Clone)]
pub struct ClusterJob {
    /// The cluster; its `session` is required (the command runs over SSH).
    pub cluster: ClusterRequest,
    /// The command, as arguments (quoted for the node's shell).
    pub command: Vec<String>,
    /// Keep the cluster when every node succeeded (it is deleted after any failure).
    pub keep: bool,
}

/// What a cluster job did.
#[derive(Debug)]
pub struct ClusterJobOutcome {
    /// The cluster it ran on (deleted unless kept).
    pub cluster: Cluster,
    /// Each node's exit status by rank; `None` for a node interrupted by the fail-fast rule or
    /// a cancel, or whose connection was lost.
    pub exit_codes: BTreeMap<u32, Option<i32>>,
    /// The first node to fail: its rank, and its exit status (`None`: it failed without one, a
    /// lost connection).
    pub first_failure: Option<(u32, Option<i32>)>,
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
}

impl Fleet {
    /// Launches `job.cluster`, runs `job.command` on every node at once, fail fast, hands each
    /// output line to `output` with the node's rank, and deletes the cluster (see
    /// [the module](crate::jobs::cluster)). `cancel` completing interrupts every node; the
    /// cluster is then deleted and [`Error::Cancelled`] returned.
    pub async fn run_on_cluster(
        &self,
        job: &ClusterJob,
        output: &(dyn Fn(u32, OutputLine) + Sync),
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<ClusterJobOutcome> {
        let Some(options) = job.cluster.session.clone() else {
            return Err(Error::invalid(
                "session",
                "a cluster job runs its command over SSH: set ClusterRequest::session",
            ));
        };
        if job.command.is_empty() {
            return Err(Error::invalid("command", "is empty"));
        }
        let (stop, _) = tokio::sync::watch::channel(false);
        let cancelled = std::sync::atomic::AtomicBool::new(false);
        let cancel = async {
            cancel.await;
            cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
            stop.send_replace(true);
        };
        tokio::pin!(cancel);
        let launched = tokio::select! {
            launched = self.launch_cluster(&job.cluster) => launched,
            () = &mut cancel => return Err(Error::Cancelled),
        };
        let cluster = launched?;
        let script = format!(". \"$HOME/{ENV_FILE_PATH}\" && {}", RemoteCommand::new(job.command.clone()).to_shell());
        let command = RemoteCommand::script(script);
        let first_failure = std::sync::Mutex::new(None::<(u32, Option<i32>)>);
        let runs = cluster.nodes.iter().map(|node| {
            let (options, command, stop, first_failure) = (&options, &command, &stop, &first_failure);
            async move {
                let rank = node.rank.unwrap_or(u32::MAX);
                let mut interrupt = stop.subscribe();
                let interrupted = async move {
                    let _ = interrupt.wait_for(|stopped| *stopped).await;
                };
                let ran = async {
                    let session = RemoteSession::connect(&node.pod, options).await?;
                    let mut sink = |line: OutputLine| output(rank, line);
                    let result = session.run_interruptible(command, &mut sink, interrupted).await;
                    let _ = session.close().await;
                    result
                };
                let code = match ran.await {
                    Ok(result) => Some(result.exit_code),
                    Err(Error::Cancelled) => return (rank, None),
                    Err(error) => {
                        tracing::warn!(node = %node.pod.id, rank, %error, "the command could not run to its end");
                        None
                    }
                };
                if code != Some(0) {
                    first_failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert((rank, code));
                    // Fail fast: every other node is interrupted.
                    stop.send_replace(true);
                }
                (rank, code)
            }
        });
        let all = futures::future::join_all(runs);
        // A member that leaves RUNNING stops the job too: one summary read per poll interval.
        let provisioner = self.provisioner(cluster.provider)?;
        let member_left = std::sync::Mutex::new(None::<String>);
        let watch = async {
            loop {
                tokio::time::sleep(provisioner.poll_interval()).await;
                match provisioner.cluster_summary(&cluster.id).await {
                    Ok(summary) if !summary.all_running() => {
                        *member_left.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(format!("nodes by status: {}", summary.progress_text()));
                        stop.send_replace(true);
                        return;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(cluster = %cluster.id, %error, "reading the cluster during the job failed")
                    }
                }
            }
        };
        let watched = async {
            tokio::pin!(all);
            tokio::select! {
                codes = &mut all => codes,
                () = watch => all.await,
            }
        };
        let exit_codes: BTreeMap<u32, Option<i32>> = tokio::select! {
            codes = watched => codes.into_iter().collect(),
            // Cancelled: `all` is dropped, which ends every session (their masters with them).
            () = &mut cancel => BTreeMap::new(),
        };
        let was_cancelled = cancelled.load(std::sync::atomic::Ordering::SeqCst);
        let first_failure = first_failure.into_inner().unwrap_or_else(|e| e.into_inner());
        let member_left = member_left.into_inner().unwrap_or_else(|e| e.into_inner());
        let kept = job.keep && first_failure.is_none() && member_left.is_none() && !was_cancelled;
        let deletion_error = if kept { None } else { self.delete_cluster(&cluster.id).await.err() };
        if was_cancelled {
            return match deletion_error {
                Some(error) => Err(error),
                None => Err(Error::Cancelled),
            };
        }
        let exit_code = match (first_failure, &member_left) {
            (Some((_, Some(code))), _) => code,
            (Some(_), _) | (None, Some(_)) => 1,
            (None, None) => 0,
        };
        Ok(ClusterJobOutcome { cluster, exit_codes, first_failure, member_left, exit_code, kept, deletion_error })
    }
}
