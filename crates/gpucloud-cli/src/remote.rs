//! `run`, `exec`, `cp` and `ssh-config`: what happens on a pod after it is ready.

use crate::cli::{CpArgs, ExecArgs, RunArgs, SshConfigArgs};
use crate::render::{self, outln};
use crate::setup::Session;
use gpucloud::jobs::{Job, JobEvent, JobOutcome};
use gpucloud::remote::{OutputLine, RemoteCommand, RemoteSession, SessionOptions};
use gpucloud::{Error, PodId};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The private key for `--ssh-key` (a `.pub` path means the private key beside it).
pub fn private_key(path: Option<&Path>) -> Option<PathBuf> {
    path.map(|key| if key.extension().is_some_and(|e| e == "pub") { key.with_extension("") } else { key.to_path_buf() })
}

/// The pod's known-hosts file and how ssh is to check its key. When its directory cannot be
/// created there is no file, so this is a first contact, and ssh says what it cannot record.
pub fn known_hosts(id: &PodId) -> (PathBuf, gpucloud::remote::HostKeyCheck) {
    gpucloud::remote::pod_known_hosts(id)
        .unwrap_or_else(|_| (gpucloud::remote::known_hosts_file(id), gpucloud::remote::HostKeyCheck::AcceptNew))
}

fn options(key: Option<&Path>) -> SessionOptions {
    SessionOptions { identity_file: private_key(key), ..SessionOptions::default() }
}

/// Writes a line of remote output where it belongs: stdout to stdout, stderr to stderr (both to
/// stderr when stdout carries JSON).
fn print_line(line: &OutputLine, json: bool) {
    match line {
        OutputLine::Stdout(text) if !json => render::write_stdout_or_drop(text),
        OutputLine::Stdout(text) | OutputLine::Stderr(text) => eprintln!("{text}"),
    }
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
    job.deadline = args.deadline;
    job.session = options(args.up.ssh_key.as_deref());
    let json = args.up.json;
    let shutdown = crate::signals::Shutdown::listen()?;
    let progress = |event: JobEvent<'_>| match event {
        JobEvent::Output(line) => print_line(line, json),
        JobEvent::Connecting(pod) if !json => eprintln!("gpucloud: {} is ready; connecting", pod.id),
        JobEvent::Synced(report) if !json => {
            eprintln!(
                "gpucloud: synced {} files ({} bytes, {} unchanged)",
                report.sent.len(),
                report.bytes,
                report.unchanged
            )
        }
        JobEvent::TearingDown(pod) if !json => eprintln!("gpucloud: terminating {}", pod.id),
        _ => {}
    };
    let outcome = session.fleet.run(&job, progress, shutdown.received()).await?;
    if json {
        render::print_json(&outcome_json(&outcome));
    } else if outcome.kept {
        eprintln!("gpucloud: kept {} running (terminate with: gpucloud down {})", outcome.pod.id, outcome.pod.id);
    }
    if let Some(error) = &outcome.teardown_error {
        eprintln!("gpucloud: error: {} could not be confirmed terminated: {error}", outcome.pod.id);
    }
    Ok(u8::try_from(outcome.exit_code.clamp(0, 255)).unwrap_or(1))
}

fn outcome_json(outcome: &JobOutcome) -> serde_json::Value {
    let seconds = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
    let t = &outcome.timings;
    json!({
        "pod": render::pod_json(&outcome.pod),
        "exit_code": outcome.exit_code,
        "kept": outcome.kept,
        "teardown_error": outcome.teardown_error,
        "sync": outcome.sync,
        "tail": outcome.tail,
        "timings_s": {
            "create_accepted": seconds(t.create_accepted), "provider_running": seconds(t.provider_running),
            "ssh_answering": seconds(t.ssh_answering), "sync": seconds(t.sync), "setup": seconds(t.setup),
            "run": seconds(t.run), "download": seconds(t.download), "teardown": seconds(t.teardown),
        },
    })
}

/// `gpucloud exec`: returns the exit status to leave with.
pub async fn exec(session: &Session, args: &ExecArgs) -> Result<u8, Error> {
    let pod = session.fleet.get(&args.pod).await?;
    let remote = RemoteSession::connect(&pod, &options(args.ssh_key.as_deref())).await?;
    let mut command = RemoteCommand::new(args.command.clone());
    command.cwd = args.cwd.clone();
    let shutdown = crate::signals::Shutdown::listen()?;
    let mut print = |line: OutputLine| print_line(&line, false);
    let result = tokio::select! {
        result = remote.run(&command, &mut print) => result?,
        () = shutdown.received() => return Err(Error::Cancelled),
    };
    let _ = remote.close().await;
    Ok(u8::try_from(result.exit_code.clamp(0, 255)).unwrap_or(1))
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
    let pod = session.fleet.get(&pod_id).await?;
    let remote = RemoteSession::connect(&pod, &options(args.ssh_key.as_deref())).await?;
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
        Some(id) => vec![session.fleet.get(id).await?],
        None => session.fleet.list().await.0,
    };
    let key = private_key(args.ssh_key.as_deref());
    let mut printed = 0;
    for pod in pods.iter().filter(|p| p.is_ready()) {
        let Ok(endpoint) = gpucloud::remote::direct_endpoint(pod) else {
            eprintln!("gpucloud: {}: no direct SSH endpoint, left out", pod.id);
            continue;
        };
        let (known_hosts, check) = known_hosts(&pod.id);
        outln!("Host gpucloud-{}-{}", pod.provider, pod.id.id());
        outln!("    # {} ({})", pod.name, pod.gpu_type);
        outln!("    HostName {}", endpoint.host);
        outln!("    Port {}", endpoint.port);
        outln!("    User {}", endpoint.user);
        outln!("    UserKnownHostsFile {}", known_hosts.display());
        outln!("    StrictHostKeyChecking {}", check.ssh_option());
        if let Some(key) = &key {
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
