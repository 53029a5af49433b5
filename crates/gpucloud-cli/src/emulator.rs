//! `gpucloud emulator` (a standalone emulator) and `gpucloud demo` (the main job on the built-in one).

use crate::cli::{self};
use crate::launch::launch;
use crate::render::{self, outln};
use crate::setup::{self, Session};
use gpucloud::{Error, LaunchRequest, Provider};
use std::time::Duration;

pub(crate) async fn emulator(args: &cli::EmulatorArgs) -> Result<(), Error> {
    let faults = gpucloud_emulator::FaultConfig {
        rate: args.fault_rate,
        kinds: if args.faults.is_empty() { gpucloud_emulator::FaultKind::ALL.to_vec() } else { args.faults.clone() },
        latency: Duration::from_millis(args.latency_ms),
        ..gpucloud_emulator::FaultConfig::default()
    };
    let api_key = args.api_key.clone().unwrap_or_else(gpucloud_emulator::random_api_key);
    let config = gpucloud_emulator::EmulatorConfig {
        api_key: api_key.clone(),
        seed: args.seed,
        ready_delay: Duration::from_secs_f64(args.ready_delay.max(0.0)),
        faults,
        port: args.port,
        quota: args.quota.clone(),
        installation_time: Duration::from_secs_f64(args.installation_time.max(0.0)),
        check_responses: false,
        log_requests: args.log_requests.clone(),
    };
    let emulator = gpucloud_emulator::Emulator::start(config).await.map_err(|e| Error::Config {
        provider: Provider::PrimeIntellect,
        message: format!("cannot listen on port {} or open the request log: {e}", args.port),
    })?;
    emulator.set_spot_lifetime(args.spot_lifetime);
    emulator.set_member_lifetime(args.member_lifetime);
    // A server keeps serving when whoever read its banner goes away: write errors are ignored.
    let banner = format!(
        "gpucloud emulator listening on {0}\n  export PRIME_API_BASE_URL={0} RUNPOD_API_BASE_URL={0}\n  export PRIME_API_KEY={1} RUNPOD_API_KEY={1}\n  state: curl {0}/_emulator/state     (Ctrl-C stops)\n",
        emulator.base_url(),
        api_key
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    Ok(())
}

/// A throwaway Ed25519 key pair for the demo: the private half in a fresh temporary file (mode
/// 0600, removed when the demo ends) and the public key line.
pub(crate) fn throwaway_key() -> Result<(std::path::PathBuf, String), Error> {
    let failed = |e: &dyn std::fmt::Display| Error::InvalidInput {
        field: "ssh_public_key",
        message: format!("generating a demo key: {e}"),
    };
    let key = ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| failed(&e))?;
    let public = key.public_key().to_openssh().map_err(|e| failed(&e))?;
    let dir = std::env::temp_dir().join(format!("gpucloud-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| failed(&e))?;
    let path = dir.join("id_ed25519");
    key.write_openssh_file(&path, ssh_key::LineEnding::LF).map_err(|e| failed(&e))?;
    Ok((path, format!("{public} gpucloud-demo-throwaway")))
}

pub(crate) async fn demo(args: &cli::DemoArgs) -> Result<(), Error> {
    let ready_delay = Duration::from_secs_f64(args.ready_delay.max(0.0));
    let session = setup::emulated(&[], ready_delay, None, gpucloud::Readiness::default()).await?;
    // On-demand capacity only, as `gpucloud up` launches by default. A new emulated account has
    // no SSH key, and a RunPod pod created without one has no SSH access (the document's
    // `startSsh`), so the demo brings a throwaway key, removed when it ends.
    let (key, public) = throwaway_key()?;
    let result = demo_with_key(&session, args, &key, public).await;
    if let Some(dir) = key.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

pub(crate) async fn demo_with_key(
    session: &Session,
    args: &cli::DemoArgs,
    key: &std::path::Path,
    public: String,
) -> Result<(), Error> {
    let mut request = LaunchRequest::new(args.gpu.clone(), 1, "demo");
    request.ssh_public_key = Some(public);
    let results = session.fleet.offers(&request.query).await;
    outln!("On-demand offers for 1x {} from both clouds, cheapest first:", args.gpu);
    render::offers_table(&results.offers.iter().take(6).cloned().collect::<Vec<_>>());
    let pod = launch(session, &request, false).await?;
    outln!("\nLaunched the cheapest offer:");
    render::pods_table(std::slice::from_ref(&pod));
    match &pod.ssh {
        Some(ssh) => outln!("SSH endpoint: {ssh}"),
        None => outln!("SSH endpoint: (not reported)"),
    }
    // A command on the pod over SSH, as `gpucloud run` and `exec` do (with the system ssh).
    let ran = async {
        let options = gpucloud::remote::SessionOptions { identity_file: Some(key.to_path_buf()), ..Default::default() };
        let remote = gpucloud::remote::RemoteSession::connect(&pod, &options).await?;
        let command = gpucloud::remote::RemoteCommand::script(
            "echo hello from the pod; nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits",
        );
        let result = remote
            .run(&command, &mut |line| {
                outln!(
                    "  pod> {}",
                    match line {
                        gpucloud::remote::OutputLine::Stdout(text) | gpucloud::remote::OutputLine::Stderr(text) => text,
                    }
                )
            })
            .await;
        let _ = remote.close().await;
        result
    };
    if std::process::Command::new("ssh").arg("-V").output().is_ok() {
        outln!("Ran a command on it over SSH:");
        match ran.await {
            Ok(result) => outln!("  (exit status {})", result.exit_code),
            Err(e) => outln!("  could not: {e}"),
        }
    } else {
        outln!("(no ssh client here: skipped running a command on the pod)");
    }
    session.fleet.terminate(&pod.id).await?;
    let left = session.emulator.as_ref().map(|e| e.live_pods().len()).unwrap_or(0);
    outln!("Terminated {} (confirmed); pods left on the emulator: {left}", pod.id);
    Ok(())
}
