//! Commands on pods that exist: `ls`, `get`, `logs`, `ssh`, `stop`, `start`, `down`, `extend`.

use crate::cli::{self, Cli};
use crate::remote;
use crate::render::print_pod;
use crate::render::{self, outln};
use crate::setup::session;
use gpucloud::{Error, Provider};
use serde_json::Value;
use std::time::Duration;

pub(crate) async fn ls(cli: &Cli, args: &cli::LsArgs) -> Result<(), Error> {
    let only: Vec<Provider> = args.provider.into_iter().collect();
    let session = session(cli, &only, Duration::from_secs(2)).await?;
    let ((mut pods, mut errors), (clusters, cluster_errors)) =
        futures::join!(session.fleet.list(), session.fleet.clusters());
    errors.extend(cluster_errors);
    if args.json {
        // Cluster members are pods too (RunPod lists them only with includeClusterPods), each
        // with its `cluster`; a PrimeIntellect multi-node pod is already listed, as one pod.
        let members = clusters.iter().filter(|c| c.single_pod.is_none()).flat_map(|c| c.nodes.iter());
        pods.extend(members.map(|n| n.pod.clone()));
        render::print_json(&Value::Array(pods.iter().map(render::pod_json).collect()));
    } else {
        // A PrimeIntellect multi-node pod is shown once, as the cluster it is.
        pods.retain(|pod| !clusters.iter().any(|c| c.single_pod.as_ref() == Some(&pod.id)));
        render::pods_table(&pods);
        if !clusters.is_empty() {
            outln!("");
            render::clusters_table(&clusters);
        }
    }
    for (provider, error) in &errors {
        eprintln!("gpucloud: warning: could not list {provider} pods or clusters: {error}");
    }
    errors.into_iter().next().map_or(Ok(()), |(_, e)| Err(e))
}

/// The cluster whose node `id` is, where `id` names a node of a PrimeIntellect multi-node pod
/// (`<pod>#<rank>`, as `ls` and `up --nodes` show them): the provider knows only the pod.
fn node_cluster(id: &gpucloud::PodId) -> Option<(gpucloud::ClusterId, u32)> {
    if id.provider() != Provider::PrimeIntellect {
        return None;
    }
    let (pod, rank) = gpucloud::model::cluster::split_node_pod_id(id)?;
    Some((gpucloud::ClusterId::new(pod.provider(), pod.id()), rank))
}

pub(crate) async fn get(cli: &Cli, args: &cli::GetArgs) -> Result<(), Error> {
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    // A node of a multi-node pod: the node as its cluster reads it (the cluster until listed).
    if let Some((id, _)) = node_cluster(&args.pod) {
        let cluster = session.fleet.get_cluster(&id).await?;
        match cluster.node(&args.pod) {
            Some(node) if args.json => render::print_json(&render::pod_json(&node.pod)),
            Some(node) => render::pod_details(&node.pod),
            None if args.json => render::print_json(&render::cluster_json(&cluster)),
            None => render::clusters_table(std::slice::from_ref(&cluster)),
        }
        return Ok(());
    }
    let pod = match session.fleet.get(&args.pod).await {
        Ok(pod) => pod,
        // Not a pod: a cluster's id?
        Err(e) if e.is_not_found() => {
            let id = gpucloud::ClusterId::new(args.pod.provider(), args.pod.id());
            let Ok(cluster) = session.fleet.get_cluster(&id).await else { return Err(e) };
            if args.json {
                render::print_json(&render::cluster_json(&cluster));
            } else {
                render::clusters_table(std::slice::from_ref(&cluster));
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if args.json {
        render::print_json(&render::pod_json(&pod));
    } else {
        render::pod_details(&pod);
    }
    Ok(())
}

pub(crate) async fn logs(cli: &Cli, args: &cli::LogsArgs) -> Result<(), Error> {
    use futures::StreamExt as _;
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let provisioner = session.fleet.provisioner(args.pod.provider())?;
    let mut lines = provisioner.logs(&args.pod, gpucloud::LogOptions { tail: args.tail, follow: args.follow });
    while let Some(line) = lines.next().await {
        outln!("{}", line?);
    }
    Ok(())
}

/// Runs the system `ssh` for the pod, replacing this process where the platform allows.
pub(crate) async fn ssh(cli: &Cli, args: &cli::SshArgs) -> Result<(), Error> {
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let pod = session.fleet.get_host(&args.pod).await?;
    let Some(endpoint) = pod.ssh.as_ref().filter(|_| pod.is_ready()) else {
        return Err(Error::InvalidInput {
            field: "pod",
            message: format!(
                "{} is not ready for SSH yet (it is {}); `gpucloud get {}` shows when it is",
                pod.id, pod.status, pod.id
            ),
        });
    };
    let mut command = std::process::Command::new("ssh");
    // Pods come and go on reused addresses: each pod's host key lives in a known-hosts file of
    // its own (never the user's), trusted on first contact and required to match after that
    // (accept-new alone only warns about a changed key).
    let (known_hosts, check) = remote::known_hosts(&pod.id, endpoint)?;
    command.args(["-p", &endpoint.port.to_string(), "-o"]);
    command.arg(format!("StrictHostKeyChecking={}", check.ssh_option()));
    command.arg("-o").arg(format!("UserKnownHostsFile={}", known_hosts.display()));
    if let Some(private) = remote::key_for(&pod.id, args.ssh_key.as_deref()) {
        command.arg("-i").arg(private);
    }
    command.arg(format!("{}@{}", endpoint.user, endpoint.host));
    // With a terminal, COMMAND gets one on the pod too, so Ctrl-C reaches it (as ^C through the
    // terminal) instead of leaving it running when ssh exits.
    if !args.command.is_empty() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        command.arg("-t");
    }
    if !args.command.is_empty() {
        command.arg("--").args(&args.command);
    }
    let cannot = |e: std::io::Error| Error::Config { provider: pod.provider, message: format!("cannot run ssh: {e}") };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        Err(cannot(command.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = command.status().map_err(cannot)?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// Whether stopping `pod` may go ahead: a RunPod pod without a volume loses every file on its
/// container disk when it starts again ("ephemeral, wiped on restart"), which is said first; then
/// `--yes`, or a "y" typed at a terminal, is needed. Without a terminal and `--yes`: refused.
fn confirm_stop(pod: &gpucloud::Pod, yes: bool) -> Result<(), Error> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if pod.keeps_files_across_restart() {
        return Ok(());
    }
    eprintln!(
        "gpucloud: warning: {} has no volume: its container disk is wiped when it starts again (RunPod: \"ephemeral, wiped on restart\"), so files written there are lost; keep data on a network volume (up --volume)",
        pod.id
    );
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::InvalidInput {
            field: "yes",
            message: format!("{} would lose its container disk on restart; pass --yes to stop it anyway", pod.id),
        });
    }
    eprint!("stop {} anyway? [y/N] ", pod.id);
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::InvalidInput { field: "yes", message: format!("could not read the answer: {e}") })?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::InvalidInput { field: "yes", message: format!("{} was not stopped", pod.id) })
    }
}

fn stop_failed(id: &gpucloud::PodId, e: &Error) {
    eprintln!("gpucloud: error: {id}: {e}");
    if let Error::Unsupported { provider: Provider::PrimeIntellect, .. } = e {
        eprintln!(
            "hint: PrimeIntellect pods only run or end: terminate it (gpucloud down {id}), keeping data on a disk attached with --volume, and relaunch next to the disk with gpucloud up --volume DISK"
        );
    }
}

/// `stop`: each pod in turn (after the warning and confirmation of [`confirm_stop`]); the first
/// failure is the exit status, after the rest.
pub(crate) async fn stop(cli: &Cli, args: &cli::StopArgs) -> Result<(), Error> {
    let mut providers: Vec<Provider> = args.pods.iter().map(|p| p.provider()).collect();
    providers.dedup();
    let session = session(cli, &providers, Duration::from_secs(2)).await?;
    let mut first_error = None;
    for id in &args.pods {
        let done = match id.provider() {
            Provider::RunPod => match session.fleet.get(id).await {
                Ok(pod) => match confirm_stop(&pod, args.yes) {
                    Ok(()) => session.fleet.stop(id).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            _ => session.fleet.stop(id).await,
        };
        match done {
            Ok(()) => outln!("stopped {id}"),
            Err(e) => {
                stop_failed(id, &e);
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `start`: each pod in turn, checked against `--max-burn` like a create; the first failure is
/// the exit status, after the rest.
pub(crate) async fn start(cli: &Cli, args: &cli::StartArgs) -> Result<(), Error> {
    let mut providers: Vec<Provider> = args.pods.iter().map(|p| p.provider()).collect();
    providers.dedup();
    let limits = crate::setup::Limits { max_burn: args.max_burn, usd_per_eur: None };
    let session =
        crate::setup::limited_session(cli, &providers, Duration::from_secs(2), gpucloud::Readiness::default(), limits)
            .await?;
    let mut first_error = None;
    for id in &args.pods {
        match session.fleet.start(id).await {
            Ok(()) => outln!("started {id}"),
            Err(e) => {
                stop_failed(id, &e);
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// `start --or-redeploy`: each pod in turn; the first failure is the exit status, after the rest.
pub(crate) async fn start_or_redeploy(cli: &Cli, args: &cli::StartArgs) -> Result<(), Error> {
    use gpucloud::upkeep::redeploy::{Replaced, StartOutcome};
    let limits = crate::setup::Limits { max_burn: args.max_burn, usd_per_eur: None };
    let session = crate::setup::limited_session(
        cli,
        &[Provider::RunPod],
        Duration::from_secs(2),
        gpucloud::Readiness::default(),
        limits,
    )
    .await?;
    let mut first_error = None;
    for id in &args.pods {
        let scope = if args.same_region {
            gpucloud::upkeep::redeploy::RedeployScope::SameRegion
        } else {
            gpucloud::upkeep::redeploy::RedeployScope::SameDataCenter
        };
        match session.fleet.start_or_redeploy_within(id, scope).await {
            Ok(StartOutcome::Started) => outln!("started {id}"),
            Ok(StartOutcome::Redeployed { pod, replaced }) => {
                let ssh = pod.ssh.as_ref().map(|s| format!(" (ssh {}@{} -p {})", s.user, s.host, s.port));
                outln!("{id}'s host has no free GPU: redeployed as {}{}", pod.id, ssh.unwrap_or_default());
                match replaced {
                    Replaced::Terminated(old) => outln!("terminated {old}"),
                    Replaced::KeptStopped { id, reason } => eprintln!("gpucloud: kept {id} stopped: {reason}"),
                    Replaced::TerminateFailed { id, error } => {
                        eprintln!(
                            "gpucloud: error: {id} was not terminated: {error} (it bills for its disk; gpucloud down {id})"
                        );
                        first_error.get_or_insert(error);
                    }
                    other => outln!("{other:?}"),
                }
            }
            Ok(other) => outln!("{id}: {other:?}"),
            Err(e) => {
                eprintln!("gpucloud: error: {id}: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

pub(crate) async fn down(cli: &Cli, args: &cli::DownArgs) -> Result<(), Error> {
    let mut providers: Vec<Provider> = args.pods.iter().map(|p| p.provider()).collect();
    providers.dedup();
    let session = session(cli, &providers, Duration::from_secs(2)).await?;
    let mut first_error = None;
    for id in &args.pods {
        // A node of a PrimeIntellect multi-node pod ends only with the pod: the whole cluster.
        if let Some((cluster, rank)) = node_cluster(id) {
            outln!(
                "{id} is node {rank} of {cluster}: PrimeIntellect ends only the whole pod; deleting the whole cluster"
            );
            if let Err(e) = down_cluster(&session, &cluster).await {
                first_error.get_or_insert(e);
            }
            continue;
        }
        // Terminating is idempotent; reading first tells the user whether there was anything to do.
        match session.fleet.get(id).await {
            Ok(pod) if pod.status == gpucloud::PodStatus::Terminated => {
                outln!("{id}: already terminated");
                continue;
            }
            // A cluster member ends only with its cluster (RunPod answers 409 to a member's delete).
            Ok(pod) if pod.membership().is_some() => {
                let cluster = pod.membership().map(|m| m.cluster).expect("a member");
                outln!(
                    "{id} is a node of cluster {cluster}: RunPod ends members only with their cluster; deleting the whole cluster"
                );
                if let Err(e) = down_cluster(&session, &cluster).await {
                    first_error.get_or_insert(e);
                }
                continue;
            }
            Err(e) if e.is_not_found() => {
                // Not a pod: a cluster's id?
                let cluster = gpucloud::ClusterId::new(id.provider(), id.id());
                match session.fleet.get_cluster(&cluster).await {
                    Ok(_) => {
                        if let Err(e) = down_cluster(&session, &cluster).await {
                            first_error.get_or_insert(e);
                        }
                    }
                    _ => outln!("{id}: no such pod or cluster (already gone, or never existed)"),
                }
                continue;
            }
            _ => {}
        }
        // First, so that no recoverer takes the pod's end for an interruption.
        if let Err(e) = gpucloud::jobs::JobRecords::open_default().end_pod(id, "down").await {
            eprintln!("gpucloud: warning: {id}: its job record could not be closed: {e}");
        }
        match session.fleet.terminate(id).await {
            Ok(()) => outln!("terminated {id}"),
            Err(e) => {
                eprintln!("gpucloud: error: {id}: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Deletes `cluster` with every member and confirms it.
async fn down_cluster(session: &crate::setup::Session, cluster: &gpucloud::ClusterId) -> Result<(), Error> {
    let nodes = session.fleet.get_cluster(cluster).await.map(|c| c.nodes.len()).unwrap_or(0);
    match session.fleet.delete_cluster(cluster).await {
        Ok(()) => {
            outln!("deleted cluster {cluster} and its {nodes} nodes");
            Ok(())
        }
        Err(e) => {
            eprintln!("gpucloud: error: cluster {cluster}: {e}");
            Err(e)
        }
    }
}

pub(crate) async fn extend(cli: &Cli, args: &cli::ExtendArgs) -> Result<(), Error> {
    let session = session(cli, &[args.pod.provider()], Duration::from_secs(2)).await?;
    let pod = session.fleet.extend_lease(&args.pod, args.ttl).await?;
    print_pod(&pod, args.json);
    Ok(())
}
