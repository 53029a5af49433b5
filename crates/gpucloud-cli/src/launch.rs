//! `gpucloud up`: launch one pod or several, with progress, and the request the flags describe.

use crate::cli::{self, Cli};
use crate::offers::unknown_gpu;
use crate::render::{self};
use crate::render::{print_pod, spinner};
use crate::setup::Session;
use crate::signals;
use gpucloud::fleet::LaunchEvent;
use gpucloud::{Error, LaunchRequest};
use indicatif::ProgressBar;
use serde_json::Value;
use std::time::Duration;

/// Launches with a spinner; SIGINT, SIGTERM or SIGHUP cancel it, and the launch cleans up.
pub(crate) async fn launch(session: &Session, request: &LaunchRequest, quiet: bool) -> Result<gpucloud::Pod, Error> {
    launch_timed(session, request, quiet).await.map(|(pod, _)| pod)
}

/// [`launch`], with how long each phase took: create accepted, provider running, SSH answering.
pub(crate) async fn launch_timed(
    session: &Session,
    request: &LaunchRequest,
    quiet: bool,
) -> Result<(gpucloud::Pod, gpucloud::jobs::PhaseTimings), Error> {
    // Listening starts here, before any create: a signal from now on is a cancel, never a kill.
    let shutdown = signals::Shutdown::listen()?;
    let bar = if quiet { ProgressBar::hidden() } else { spinner() };
    bar.set_message("looking for offers");
    let started = std::time::Instant::now();
    let timings = std::sync::Mutex::new(gpucloud::jobs::PhaseTimings::default());
    let record = |event: &LaunchEvent<'_>| {
        timings.lock().unwrap_or_else(|e| e.into_inner()).observe_launch(event, started.elapsed());
    };
    let progress = |event: LaunchEvent<'_>| {
        record(&event);
        match event {
            LaunchEvent::Creating { offer } => {
                if let Some(charge) = offer.upfront_charge() {
                    bar.println(format!(
                        "prepaid offer: {} charged up front for {} h, whatever the use",
                        render::money(charge, &offer.currency),
                        offer.prepaid_hours.unwrap_or_default()
                    ));
                }
                bar.set_message(format!(
                    "creating {}x {} on {}{} at {}/h",
                    offer.gpu_count,
                    offer.gpu_type,
                    offer.provider,
                    offer.via.as_deref().map(|v| format!(" via {v}")).unwrap_or_default(),
                    render::money(offer.price_per_hour, &offer.currency)
                ));
            }
            LaunchEvent::Created { pod } => bar.set_message(format!("created {}", pod.id)),
            LaunchEvent::Waiting { pod } => bar.set_message(format!("waiting for {} to be ready", pod.id)),
            LaunchEvent::Observed { pod } => {
                bar.set_message(format!("waiting for {} to be ready: {}", pod.id, pod.progress_text()));
            }
            LaunchEvent::CleaningUp => bar.set_message("cleaning up"),
            _ => {}
        }
    };
    let cancel = shutdown.received();
    let result = session.fleet.launch_with_progress(request, progress, cancel).await;
    bar.finish_and_clear();
    let mut timings = timings.into_inner().unwrap_or_else(|e| e.into_inner());
    if request.wait {
        timings.launch_ready(started.elapsed());
    }
    result.map(|pod| (pod, timings))
}

/// The public key line for `path`: the file itself, or `path.pub` when `path` is a private key
/// with its public half beside it (as `ssh-keygen` leaves them).
pub(crate) fn read_public_key(path: &std::path::Path) -> Result<String, Error> {
    let sibling = std::path::PathBuf::from(format!("{}.pub", path.display()));
    let file =
        if path.extension().is_none_or(|e| e != "pub") && sibling.is_file() { sibling } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|e| Error::InvalidInput {
        field: "ssh_key",
        message: format!("cannot read {}: {e}", file.display()),
    })?;
    gpucloud::providers::ssh::parse_public_key(&text)
}

pub(crate) fn launch_request(args: &cli::UpArgs) -> LaunchRequest {
    let mut request = LaunchRequest::new(args.gpu.clone(), args.count, args.name.clone());
    request.image = args.image.clone();
    request.env = args.env.iter().cloned().collect();
    request.volume_ids = args.volumes.clone();
    request.query.regions = args.regions.clone();
    request.query.allow_prepaid = args.allow_prepaid;
    request.disk_gb = args.disk;
    request.min_cuda_version = args.min_cuda.clone();
    request.budget_usd = args.budget;
    request.idle_exempt = args.no_idle_reap;
    request.max_price_per_hour = args.max_price;
    request.query.max_price_per_hour = args.max_price;
    if args.spot {
        request.query.spot = None;
    }
    request.ready_timeout = Duration::from_secs(args.timeout);
    request.ttl = args.ttl;
    request.wait = !args.no_wait;
    request
}

/// `up --pods N`: N launches at once through one fleet (one client per provider, so one
/// rate-limit budget), each with its own launch tag. Unless all become ready (or
/// `--allow-partial`), every pod that did is terminated too, and so on a signal.
pub(crate) async fn up_many(session: &Session, args: &cli::UpArgs, request: &LaunchRequest) -> Result<(), Error> {
    use futures::FutureExt as _;
    let shutdown = signals::Shutdown::listen()?;
    let cancel = shutdown.received().shared();
    let bar = if args.json { ProgressBar::hidden() } else { spinner() };
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let total = args.pods as usize;
    bar.set_message(format!("launching {total} pods"));
    let launches = (1..=total).map(|i| {
        let request = LaunchRequest { name: format!("{}-{i}", request.name), ..request.clone() };
        let (cancel, bar, ready) = (cancel.clone(), bar.clone(), std::sync::Arc::clone(&ready));
        async move {
            let progress = |event: LaunchEvent<'_>| {
                if let LaunchEvent::Created { .. } = event {
                    bar.set_message(format!(
                        "{} of {total} created",
                        ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
                    ));
                }
            };
            session.fleet.launch_with_progress(&request, progress, cancel).await
        }
    });
    let results = futures::future::join_all(launches).await;
    bar.finish_and_clear();
    let (pods, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let pods: Vec<gpucloud::Pod> = pods.into_iter().filter_map(Result::ok).collect();
    let errors: Vec<Error> = errors.into_iter().filter_map(Result::err).collect();
    let interrupted = errors.iter().any(|e| matches!(e, Error::Cancelled));
    if let Some(first) = errors.into_iter().next() {
        if args.allow_partial && !interrupted && !pods.is_empty() {
            eprintln!("gpucloud: warning: {} of {total} pods did not launch: {first}", total - pods.len());
        } else {
            eprintln!("gpucloud: {} of {total} pods ready; terminating them", pods.len());
            for pod in &pods {
                if let Err(e) = session.fleet.terminate(&pod.id).await {
                    eprintln!("gpucloud: error: {}: {e}", pod.id);
                }
            }
            return Err(first);
        }
    }
    for pod in &pods {
        remember_key(&pod.id, args.ssh_key.as_deref());
    }
    if args.json {
        render::print_json(&Value::Array(pods.iter().map(render::pod_json).collect()));
    } else {
        render::pods_table(&pods);
    }
    Ok(())
}

/// Remembers the private key a pod was launched with, so that `exec`, `cp`, `ssh` and
/// `ssh-config` use it when no --ssh-key is given (a failure only costs that convenience).
pub(crate) fn remember_key(id: &gpucloud::PodId, key: Option<&std::path::Path>) {
    if let Some(private) = crate::remote::private_key(key)
        && let Err(e) = gpucloud::remote::remember_key(id, &private)
    {
        eprintln!("gpucloud: {id}: the launch key is not remembered: {e}");
    }
}

/// `--spot` on RunPod alone: RunPod has no spot pods any more, and an on-demand pod in their
/// place would be a silent change; the typed error says why, before any request.
pub(crate) fn check_spot(args: &cli::UpArgs) -> Result<(), Error> {
    if args.spot && !args.providers.is_empty() && args.providers.iter().all(|p| *p == gpucloud::Provider::RunPod) {
        return Err(gpucloud::providers::runpod::spot_removed());
    }
    Ok(())
}

pub(crate) async fn up(cli: &Cli, args: &cli::UpArgs) -> Result<(), Error> {
    check_spot(args)?;
    let mut request = launch_request(args);
    request.ssh_public_key = args.ssh_key.as_deref().map(read_public_key).transpose()?;
    let session = crate::setup::limited_session(
        cli,
        &args.providers,
        Duration::from_secs(2),
        args.ready.into(),
        crate::setup::Limits { max_burn: args.max_burn, usd_per_eur: args.usd_per_eur },
    )
    .await?;
    if let Some(nodes) = args.nodes {
        return up_cluster(&session, args, nodes, request.ssh_public_key.clone()).await;
    }
    if args.pods > 1 {
        return up_many(&session, args, &request).await;
    }
    let (pod, timings) = match launch_timed(&session, &request, args.json).await {
        Err(Error::NoCapacity { attempts }) if attempts.is_empty() => {
            return Err(unknown_gpu(Some(&args.gpu)).unwrap_or(Error::NoCapacity { attempts }));
        }
        other => other?,
    };
    remember_key(&pod.id, args.ssh_key.as_deref());
    if args.json {
        // The pod, and how long each phase of its launch took (`run --json` has the same keys).
        let mut value = render::pod_json(&pod);
        let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        value["timings_s"] = serde_json::json!({
            "create_accepted": seconds(timings.create_accepted),
            "provider_running": seconds(timings.provider_running),
            "ssh_answering": seconds(timings.ssh_answering),
        });
        render::print_json(&value);
    } else {
        print_pod(&pod, false);
    }
    if !args.json {
        if pod.is_spot() {
            eprintln!(
                "spot capacity: PrimeIntellect may take it back at any time, with no notice (`gpucloud run --spot --recover N` relaunches a job)"
            );
        }
        if let Some(ssh) = &pod.ssh {
            eprintln!("ready: {ssh}");
        }
        if let Some(expiry) = pod.lease_expires_at {
            eprintln!(
                "leased until {expiry} (gpucloud reap terminates it after that; extend with: gpucloud extend {} --ttl 2h)",
                pod.id
            );
        }
        eprintln!("shell with: gpucloud ssh {} (its key is remembered)", pod.id);
        eprintln!("terminate with: gpucloud down {}", pod.id);
    }
    Ok(())
}

/// `up --nodes N`: one RunPod cluster, all or nothing ([`gpucloud::Fleet::launch_cluster`]);
/// SIGINT, SIGTERM or SIGHUP cancel it, and the cluster is deleted and the deletion confirmed.
async fn up_cluster(
    session: &Session,
    args: &cli::UpArgs,
    nodes: u32,
    ssh_public_key: Option<String>,
) -> Result<(), Error> {
    use gpucloud::ClusterEvent;
    let mut request = gpucloud::ClusterRequest::new(args.gpu.clone(), args.count, nodes, args.name.clone());
    request.image = args.image.clone();
    request.env = args.env.iter().cloned().collect();
    request.query.regions = args.regions.clone();
    request.disk_gb = args.disk;
    request.budget_usd = args.budget;
    request.max_price_per_hour = args.max_price;
    request.ttl = args.ttl;
    request.ready_timeout = Duration::from_secs(args.timeout);
    request.ssh_public_key = ssh_public_key;
    if args.ssh_key.is_some() {
        let identity_file = crate::remote::private_key(args.ssh_key.as_deref());
        request.session = Some(gpucloud::remote::SessionOptions { identity_file, ..Default::default() });
    }
    let shutdown = signals::Shutdown::listen()?;
    let bar = if args.json { ProgressBar::hidden() } else { spinner() };
    bar.set_message("looking for cluster offers");
    let progress = |event: ClusterEvent<'_>| match event {
        ClusterEvent::Creating { offer } => bar.set_message(format!(
            "creating a cluster of {} x {}x {} on {} at {}/h for all nodes",
            offer.nodes,
            offer.node.gpu_count,
            offer.node.gpu_type,
            offer.node.provider,
            render::money(offer.price_per_hour(), &offer.node.currency)
        )),
        ClusterEvent::Created { cluster } => bar.set_message(format!("created cluster {}", cluster.id)),
        ClusterEvent::Observed { cluster } => {
            bar.set_message(format!("waiting for cluster {}: {}", cluster.id, cluster.progress_text()));
        }
        ClusterEvent::WritingEnvironment => bar.set_message("writing the hostfile and environment on every node"),
        ClusterEvent::CleaningUp => bar.set_message("cleaning up"),
        _ => {}
    };
    let result = session.fleet.launch_cluster_with_progress(&request, progress, shutdown.received()).await;
    bar.finish_and_clear();
    let cluster = match result {
        Err(Error::NoCapacity { attempts }) if attempts.is_empty() => {
            return Err(unknown_gpu(Some(&args.gpu)).unwrap_or(Error::NoCapacity { attempts }));
        }
        other => other?,
    };
    for node in &cluster.nodes {
        remember_key(&node.pod.id, args.ssh_key.as_deref());
    }
    if args.json {
        render::print_json(&render::cluster_json(&cluster));
        return Ok(());
    }
    render::clusters_table(std::slice::from_ref(&cluster));
    if let Some(endpoint) = &cluster.primary_ssh_endpoint {
        eprintln!(
            "ready: primary {} at {endpoint}",
            cluster.primary.as_ref().map(ToString::to_string).unwrap_or_default()
        );
    }
    if request.session.is_some() {
        eprintln!("every node has ~/.gpucloud/hostfile and ~/.gpucloud/env (load it with: . ~/.gpucloud/env)");
    } else {
        eprintln!(
            "no --ssh-key: the hostfile and ~/.gpucloud/env were not written; RunPod's own cluster variables are set"
        );
    }
    if let Some(expiry) = cluster.lease_expires_at {
        eprintln!("leased until {expiry} (gpucloud reap deletes the whole cluster after that)");
    }
    eprintln!("delete with: gpucloud down {} (or any member's id)", cluster.id);
    Ok(())
}
