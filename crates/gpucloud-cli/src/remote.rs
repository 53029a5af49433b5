//! `run`, `exec`, `cp` and `ssh-config`: what happens on a pod after it is ready.

use crate::cli::{CpArgs, ExecArgs, RunArgs, SshConfigArgs};
use crate::render::{self, outln};
use crate::setup::Session;
use gpucloud::jobs::cluster::{ClusterJob, ClusterJobOutcome, ClusterPhase, MemberFailurePolicy};
use gpucloud::jobs::{Job, JobEvent, JobOutcome};
use gpucloud::remote::sync::LeftOutReason;
use gpucloud::remote::{OutputLine, OutputSink, RemoteCommand, RemoteSession, SessionOptions, Stream};
use gpucloud::{Error, PodId};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The private key for `--ssh-key` (a `.pub` path means the private key beside it).
pub fn private_key(path: Option<&Path>) -> Option<PathBuf> {
    path.map(|key| if key.extension().is_some_and(|e| e == "pub") { key.with_extension("") } else { key.to_path_buf() })
}

/// The pod's known-hosts file, its entries pinned to the pod's current `endpoint` (a new port
/// after a stop/start is the same pod), and how ssh is to check its key. When its directory
/// cannot be created there is no file, so this is a first contact, and ssh says what it cannot
/// record.
pub fn known_hosts(
    id: &PodId,
    endpoint: &gpucloud::SshEndpoint,
) -> Result<(PathBuf, gpucloud::remote::HostKeyCheck), Error> {
    // An unsafe state directory is refused, not worked around: a key planted there would be
    // trusted.
    let (file, check) = gpucloud::remote::pod_known_hosts(id)?;
    if let Err(e) = gpucloud::remote::pin_known_hosts(&file, endpoint) {
        eprintln!("gpucloud: cannot update {}: {e}", file.display());
    }
    Ok((file, check))
}

/// The private key to use on pod `id`: --ssh-key (a `.pub` path means the private key beside
/// it), else the key the pod was launched with (`up --ssh-key`, remembered), else none (the
/// user's ssh configuration and agent).
pub fn key_for(id: &PodId, ssh_key: Option<&Path>) -> Option<PathBuf> {
    private_key(ssh_key).or_else(|| gpucloud::remote::remembered_key(id))
}

fn options(id: &PodId, key: Option<&Path>) -> SessionOptions {
    SessionOptions { identity_file: key_for(id, key), ..SessionOptions::default() }
}

/// Writes remote output where it belongs, byte for byte: stdout to stdout, stderr to stderr
/// (both to stderr when stdout carries JSON).
fn pass_through(stream: Stream, bytes: &[u8], json: bool) {
    match stream {
        Stream::Stdout if !json => render::write_stdout_or_drop(bytes),
        Stream::Stdout | Stream::Stderr => render::write_stderr(bytes),
    }
}

/// `exec`'s sink: the bytes passed through; lines are not needed.
struct PassThrough;

impl OutputSink for PassThrough {
    fn line(&mut self, _: OutputLine) {}

    fn bytes(&mut self, stream: Stream, bytes: &[u8]) {
        pass_through(stream, bytes, false);
    }

    fn wants_lines(&self) -> bool {
        false
    }
}

/// Says what a shell-defined exit status usually means (127: not found), on stderr.
fn explain_exit(code: i32) {
    if let Some(hint) = gpucloud::remote::exit_hint(code) {
        eprintln!("gpucloud: the command exited {code}; hint: {hint}");
    }
}

/// Refuses, before any request, what `run` does not do with the flags given: the cluster-only
/// flags without `--nodes`, and what `--nodes` does not support yet.
pub fn check_run_flags(args: &RunArgs) -> Result<(), Error> {
    if args.up.nodes.is_none() {
        let cluster_only = [
            ("download-from", args.download_from != crate::cli::DownloadFrom::Primary),
            ("log-dir", args.log_dir.is_some()),
            ("on-member-failure", args.on_member_failure != crate::cli::OnMemberFailure::Abort),
            ("recreate-max", args.recreate_max.is_some()),
        ];
        if let Some((flag, _)) = cluster_only.iter().find(|(_, given)| *given) {
            return Err(Error::InvalidInput {
                field: "nodes",
                message: format!(
                    "--{flag} is for cluster jobs (run --nodes N): one pod's output is printed as it comes"
                ),
            });
        }
        return Ok(());
    }
    if args.recreate_max.is_some() && args.on_member_failure != crate::cli::OnMemberFailure::Recreate {
        return Err(Error::InvalidInput {
            field: "recreate_max",
            message: "--recreate-max is for --on-member-failure recreate".into(),
        });
    }
    let unsupported = [
        ("recover", args.recover > 0),
        ("on-demand-after", args.on_demand_after.is_some()),
        ("checkpoint-dir", args.checkpoint_dir.is_some()),
    ];
    if let Some((flag, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(Error::InvalidInput {
            field: "nodes",
            message: format!(
                "run --nodes does not support --{flag} yet: spot recovery and checkpoints run on one pod only"
            ),
        });
    }
    if args.detach {
        return Err(Error::InvalidInput {
            field: "nodes",
            message: "run --nodes does not support --detach yet: a detached job runs on one pod".into(),
        });
    }
    Ok(())
}

/// Where `run --nodes` writes its nodes' logs without `--log-dir`: the state directory's
/// `logs/<name>-<UTC time>/`.
fn default_log_dir(name: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    gpucloud::remote::state_dir().join("logs").join(format!("{name}-{stamp}-{}", std::process::id()))
}

/// `gpucloud run --nodes N`: the job on every node of a new cluster (workdir synced to every
/// node, from rank 0 from 3 nodes on, setup, the command, downloads), fail fast, each line prefixed with its node's
/// rank and each node's output also in its log file; returns the exit status to leave with (the
/// first failing node's).
pub async fn run_cluster(session: &Session, args: &RunArgs, nodes: u32) -> Result<u8, Error> {
    check_run_flags(args)?;
    let up = &args.up;
    let mut request = gpucloud::ClusterRequest::new(up.gpu.clone(), up.count, nodes, up.name.clone());
    request.image = up.image.clone();
    request.env = up.env.iter().cloned().collect();
    request.query.regions = up.regions.clone();
    request.disk_gb = up.disk;
    request.budget_usd = up.budget;
    request.max_price_per_hour = up.max_price;
    request.ttl = up.ttl;
    request.ready_timeout = std::time::Duration::from_secs(up.timeout);
    request.ssh_public_key = up.ssh_key.as_deref().map(crate::launch::read_public_key).transpose()?;
    request.session =
        Some(SessionOptions { identity_file: private_key(up.ssh_key.as_deref()), ..SessionOptions::default() });
    let mut job = ClusterJob::new(request, args.command.clone());
    job.keep = args.keep;
    job.workdir = args.workdir.clone();
    job.remote_dir = args.remote_dir.clone();
    job.setup = args.setup.clone();
    job.downloads = args.downloads.clone();
    job.download_from = args.download_from.into();
    job.deadline = args.deadline;
    job.log_dir = Some(args.log_dir.clone().unwrap_or_else(|| default_log_dir(&up.name)));
    job.on_member_failure = match args.on_member_failure {
        crate::cli::OnMemberFailure::Abort => MemberFailurePolicy::Abort,
        crate::cli::OnMemberFailure::Recreate => MemberFailurePolicy::Recreate { max: args.recreate_max.unwrap_or(1) },
    };
    let shutdown = crate::signals::Shutdown::listen()?;
    let output = |rank: u32, line: OutputLine| match line {
        OutputLine::Stdout(text) if !up.json => crate::render::outln!("[rank {rank}] {text}"),
        OutputLine::Stdout(text) | OutputLine::Stderr(text) => eprintln!("[rank {rank}] {text}"),
    };
    if !up.json {
        eprintln!("gpucloud: launching a cluster of {nodes} nodes; the job runs on every node, fail fast");
    }
    if let Some(dir) = &job.log_dir {
        eprintln!("gpucloud: each node's output is also written to {}/node-<rank>.log", dir.display());
    }
    let outcome = session.fleet.run_on_cluster(&job, &output, shutdown.received()).await?;
    if !up.json {
        for node in outcome.nodes.values() {
            if let Some(report) = &node.sync {
                let how = match report.method {
                    gpucloud::remote::sync::SyncMethod::Relay => "copied from rank 0",
                    _ => "synced",
                };
                eprintln!(
                    "gpucloud: rank {}: {how} {} files ({} bytes, {} unchanged{})",
                    node.rank,
                    report.sent.len(),
                    report.bytes,
                    report.unchanged,
                    if report.left_out.is_empty() {
                        String::new()
                    } else {
                        format!(", {} left out", report.left_out.len())
                    }
                );
            }
        }
    }
    for r in &outcome.recreations {
        let members: Vec<String> = r
            .members
            .iter()
            .map(|(rank, pod, status)| format!("rank {} ({pod}) {status}", rank.map_or("?".into(), |r| r.to_string())))
            .collect();
        eprintln!(
            "gpucloud: cluster {} deleted after {:.0}s: a member left RUNNING ({}; {}); the job was run again on a new cluster",
            r.cluster,
            r.ran_for.as_secs_f64(),
            r.reason,
            if members.is_empty() { "which one unknown".to_string() } else { members.join(", ") }
        );
    }
    if let Some(reason) = &outcome.member_left {
        eprintln!("gpucloud: a member of the cluster left RUNNING ({reason}); every node was stopped");
    }
    if let Some((rank, code)) = outcome.first_failure {
        let code = code.map_or_else(|| "without an exit status".to_string(), |c| format!("with {c}"));
        let phase = match outcome.failed_phase {
            Some(ClusterPhase::Connect) => "connecting",
            Some(ClusterPhase::Sync) => "syncing the workdir",
            Some(ClusterPhase::Setup) => "in its setup",
            _ => "in the command",
        };
        let why =
            outcome.nodes.get(&rank).and_then(|n| n.error.as_deref()).map(|e| format!(": {e}")).unwrap_or_default();
        eprintln!("gpucloud: rank {rank} failed first, {phase}, {code}{why}; the other nodes were stopped");
    }
    for (rank, failure) in outcome.download_errors() {
        eprintln!(
            "gpucloud: error: download {} from rank {rank} to {}: {}",
            failure.remote,
            failure.local.display(),
            failure.error
        );
    }
    if up.json {
        render::print_json(&cluster_outcome_json(&outcome, job.log_dir.as_deref()));
    } else if outcome.kept {
        eprintln!("gpucloud: kept cluster {} (delete with: gpucloud down {})", outcome.cluster.id, outcome.cluster.id);
    }
    if let Some(error) = &outcome.deletion_error {
        eprintln!(
            "gpucloud: error: cluster {} could not be confirmed deleted: {error} (it may still be billing: gpucloud down {})",
            outcome.cluster.id, outcome.cluster.id
        );
        return Ok(crate::exit::TERMINATION_UNCONFIRMED);
    }
    if outcome.exit_code == 0 && !outcome.download_errors().is_empty() {
        return Ok(1);
    }
    Ok(crate::exit::of_status(outcome.exit_code))
}

/// `run --nodes N --json`.
fn cluster_outcome_json(outcome: &ClusterJobOutcome, log_dir: Option<&Path>) -> serde_json::Value {
    let codes: serde_json::Map<String, serde_json::Value> =
        outcome.exit_codes.iter().map(|(rank, code)| (rank.to_string(), json!(code))).collect();
    let download_errors: Vec<serde_json::Value> = outcome
        .download_errors()
        .into_iter()
        .map(|(rank, f)| json!({"rank": rank, "remote": f.remote, "local": f.local, "error": f.error}))
        .collect();
    json!({
        "cluster": outcome.cluster.id.to_string(), "exit_code": outcome.exit_code, "exit_codes": codes,
        "first_failure": outcome.first_failure.map(|(rank, code)| json!({
            "rank": rank, "exit_code": code, "phase": outcome.failed_phase,
        })),
        "member_left": outcome.member_left,
        "recreations": outcome.recreations,
        "kept": outcome.kept, "deletion_error": outcome.deletion_error.as_ref().map(ToString::to_string),
        "log_dir": log_dir,
        "nodes": outcome.nodes.values().collect::<Vec<_>>(),
        "download_errors": download_errors,
    })
}

/// `gpucloud run`: returns the exit status to leave with.
pub async fn run(session: &Session, args: &RunArgs, mut request: gpucloud::LaunchRequest) -> Result<u8, Error> {
    if args.up.pods > 1 || args.up.no_wait {
        return Err(Error::InvalidInput { field: "pods", message: "run launches one pod and waits for it".into() });
    }
    request.ready_timeout = std::time::Duration::from_secs(args.up.timeout);
    let mut job = Job::new(request, args.command.clone());
    job.workdir = args.workdir.clone();
    job.remote_dir = args.remote_dir.clone();
    job.setup = args.setup.clone();
    job.downloads = args.downloads.clone();
    job.keep = args.keep;
    // Output is passed through as bytes; lines are not shown (the tail is kept either way).
    job.output_lines = false;
    job.deadline = args.deadline;
    job.recovery = gpucloud::jobs::Recovery { max_interruptions: args.recover, on_demand_after: args.on_demand_after };
    job.checkpoint =
        args.checkpoint_dir.clone().map(|remote| gpucloud::jobs::Checkpoint { remote, every: args.checkpoint_every });
    job.session =
        SessionOptions { identity_file: private_key(args.up.ssh_key.as_deref()), ..SessionOptions::default() };
    let json = args.up.json;
    let shutdown = crate::signals::Shutdown::listen()?;
    let progress = |event: JobEvent<'_>| match event {
        JobEvent::OutputBytes(stream, bytes) => pass_through(stream, bytes, json),
        JobEvent::Connecting(pod) if !json => eprintln!("gpucloud: {} is ready; connecting", pod.id),
        JobEvent::Synced(report) if !json => {
            eprintln!(
                "gpucloud: synced {} files ({} bytes, {} unchanged)",
                report.sent.len(),
                report.bytes,
                report.unchanged
            );
            for left in &report.left_out {
                let why = match &left.reason {
                    LeftOutReason::Secret => {
                        "a secret file (name it with `!PATH` in .gpucloudignore to send it)".into()
                    }
                    LeftOutReason::LinkOutside { target } => format!("a link out of the workdir (to {target})"),
                    LeftOutReason::Special => "not a regular file".to_string(),
                    _ => "left out".to_string(),
                };
                eprintln!("gpucloud: left out {}: {why}", left.path);
            }
        }
        JobEvent::TearingDown(pod) if !json => eprintln!("gpucloud: terminating {}", pod.id),
        JobEvent::Interrupted(interruption) => eprintln!("gpucloud: {interruption}"),
        JobEvent::Relaunching { attempt, request } => eprintln!(
            "gpucloud: relaunching the job (attempt {attempt}, {}{})",
            match request.query.spot {
                Some(false) => "on-demand",
                _ => "spot",
            },
            if request.try_last.is_empty() {
                String::new()
            } else {
                format!(
                    "; tried last: {}",
                    request.try_last.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                )
            }
        ),
        JobEvent::CheckpointRestored(restored) if !json => {
            eprintln!("gpucloud: restored the checkpoint on {} ({:.1} s old)", restored.pod, restored.age.as_secs_f64())
        }
        _ => {}
    };
    let outcome = session.fleet.run(&job, progress, shutdown.received()).await?;
    if json {
        render::print_json(&outcome_json(&outcome));
    } else if outcome.kept && session.emulator.is_some() {
        // The built-in emulator lives in this process: its pods end when the command does.
        eprintln!(
            "gpucloud: {} was kept, but it lives on the built-in emulator, which ends with this command (`gpucloud emulator` runs one that keeps pods between commands)",
            outcome.pod.id
        );
    } else if outcome.kept {
        eprintln!("gpucloud: kept {} running (terminate with: gpucloud down {})", outcome.pod.id, outcome.pod.id);
    }
    if !json && !outcome.interruptions.is_empty() {
        let cost = outcome.interrupted_cost().map_or("unknown".into(), |c| format!("about {c:.4}"));
        eprintln!(
            "gpucloud: the job finished on {} after {} interruption(s); the interrupted attempts cost {cost}",
            outcome.pod.id,
            outcome.interruptions.len()
        );
    }
    explain_exit(outcome.exit_code);
    for failure in &outcome.download_errors {
        eprintln!("gpucloud: error: download {} to {}: {}", failure.remote, failure.local.display(), failure.error);
    }
    if let Some(error) = &outcome.teardown_error {
        eprintln!(
            "gpucloud: error: {} could not be confirmed terminated: {error} (it may still be billing: check with `gpucloud ls`, end it with `gpucloud down {}`)",
            outcome.pod.id, outcome.pod.id
        );
        // Whatever the command's status: a script checking `$?` must learn a pod may be left.
        // The status itself is said, since the exit code no longer carries it.
        eprintln!("gpucloud: the command exited {} (exiting 7 for the pod instead)", outcome.exit_code);
        return Ok(crate::exit::TERMINATION_UNCONFIRMED);
    }
    if !outcome.download_errors.is_empty() && outcome.exit_code == 0 {
        return Ok(1);
    }
    Ok(crate::exit::of_status(outcome.exit_code))
}

fn outcome_json(outcome: &JobOutcome) -> serde_json::Value {
    let seconds = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
    let t = &outcome.timings;
    json!({
        "pod": render::pod_json(&outcome.pod),
        "exit_code": outcome.exit_code,
        "kept": outcome.kept,
        "teardown_error": outcome.teardown_error,
        "download_errors": outcome.download_errors,
        "sync": outcome.sync,
        "tail": outcome.tail,
        "interruptions": outcome.interruptions,
        "interrupted_cost": outcome.interrupted_cost(),
        "restored_checkpoint": outcome.restored_checkpoint.as_ref().map(|r| json!({
            "pod": r.pod.to_string(), "age_s": r.age.as_secs_f64(), "how": r.how,
        })),
        "timings_s": {
            "create_accepted": seconds(t.create_accepted), "provider_running": seconds(t.provider_running),
            "ssh_answering": seconds(t.ssh_answering), "sync": seconds(t.sync), "setup": seconds(t.setup),
            "run": seconds(t.run), "download": seconds(t.download), "teardown": seconds(t.teardown),
        },
    })
}

/// `gpucloud exec`: returns the exit status to leave with.
pub async fn exec(session: &Session, args: &ExecArgs) -> Result<u8, Error> {
    let pod = session.fleet.get_host(&args.pod).await?;
    let remote = RemoteSession::connect(&pod, &options(&pod.id, args.ssh_key.as_deref())).await?;
    let mut command = RemoteCommand::new(args.command.clone());
    command.cwd = args.cwd.clone();
    let shutdown = crate::signals::Shutdown::listen()?;
    let mut sink = PassThrough;
    // Ctrl-C (or SIGTERM, SIGHUP) reaches the remote command's process group, then the session
    // closes: the command does not run on unseen.
    let result = remote.run_interruptible(&command, &mut sink, shutdown.received()).await;
    let _ = remote.close().await;
    let result = result?;
    explain_exit(result.exit_code);
    Ok(crate::exit::of_status(result.exit_code))
}

/// `POD:PATH` (POD as `provider:id`), or `None` for a local path.
fn remote_side(text: &str) -> Option<(PodId, String)> {
    let (provider, rest) = text.split_once(':')?;
    let (id, path) = rest.split_once(':')?;
    let pod: PodId = format!("{provider}:{id}").parse().ok()?;
    Some((pod, if path.is_empty() { ".".into() } else { path.to_string() }))
}

/// `gpucloud cp`.
pub async fn cp(session: &Session, args: &CpArgs) -> Result<(), Error> {
    let (pod_id, remote_path, upload) = match (remote_side(&args.src), remote_side(&args.dst)) {
        (None, Some((pod, path))) => (pod, path, true),
        (Some((pod, path)), None) => (pod, path, false),
        _ => {
            return Err(Error::InvalidInput {
                field: "src",
                message: "exactly one side must be POD:PATH (e.g. runpod:abc123:results) and the other local".into(),
            });
        }
    };
    let pod = session.fleet.get_host(&pod_id).await?;
    let remote = RemoteSession::connect(&pod, &options(&pod.id, args.ssh_key.as_deref())).await?;
    if upload {
        let dir = remote_path;
        let local = Path::new(&args.src);
        if !local.exists() {
            return Err(Error::InvalidInput { field: "src", message: format!("{} does not exist", local.display()) });
        }
        remote.upload(local, &dir).await?;
        outln!("copied {} to {pod_id}:{dir}/", local.display());
    } else {
        let path = remote_path;
        remote.download(&path, Path::new(&args.dst)).await?;
        outln!("copied {pod_id}:{path} to {}/", args.dst);
    }
    let _ = remote.close().await;
    Ok(())
}

/// `gpucloud ssh-config`.
pub async fn ssh_config(session: &Session, args: &SshConfigArgs) -> Result<(), Error> {
    let pods = match &args.pod {
        Some(id) => vec![session.fleet.get_host(id).await?],
        None => session.fleet.list().await.0,
    };
    let mut printed = 0;
    for pod in pods.iter().filter(|p| p.is_ready()) {
        let Ok(endpoint) = gpucloud::remote::direct_endpoint(pod) else {
            eprintln!("gpucloud: {}: no direct SSH endpoint, left out", pod.id);
            continue;
        };
        let (known_hosts, check) = known_hosts(&pod.id, &endpoint)?;
        // A node's id (`<pod>#<rank>`) would start a comment in ssh_config.
        outln!("Host gpucloud-{}-{}", pod.provider, pod.id.id().replace('#', "-node"));
        outln!("    # {} ({})", pod.name, pod.gpu_type);
        outln!("    HostName {}", endpoint.host);
        outln!("    Port {}", endpoint.port);
        outln!("    User {}", endpoint.user);
        outln!("    UserKnownHostsFile {}", known_hosts.display());
        outln!("    StrictHostKeyChecking {}", check.ssh_option());
        if let Some(key) = key_for(&pod.id, args.ssh_key.as_deref()) {
            outln!("    IdentityFile {}", key.display());
            outln!("    IdentitiesOnly yes");
        }
        outln!("");
        printed += 1;
    }
    if printed == 0 {
        eprintln!("gpucloud: no running pod with a direct SSH endpoint");
    }
    Ok(())
}
