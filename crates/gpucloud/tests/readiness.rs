//! "Ready" means a shell will open: the SSH endpoint answers with a banner, against the
//! emulator's real loopback SSH listeners.

mod common;

use gpucloud::{Error, Fleet, LaunchRequest, LaunchSpec, OfferQuery, Provisioner, Readiness};
use gpucloud_emulator::{FaultConfig, FaultKind};
use std::time::Duration;
use tokio::time::Instant;

fn silent_ssh_for(banner_delay: Duration) -> FaultConfig {
    FaultConfig {
        rate: 1.0,
        kinds: vec![FaultKind::SshBannerDelay],
        creates_only: true,
        banner_delay,
        ..FaultConfig::default()
    }
}

async fn create_on(provisioner: &dyn Provisioner) -> gpucloud::Pod {
    let offers = provisioner.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    provisioner.create(&LaunchSpec::new(offers[0].clone(), "ssh")).await.unwrap()
}

#[tokio::test]
async fn a_ready_pod_answers_ssh_on_both_clouds() {
    let emulator = common::emulator(Duration::from_millis(100), FaultConfig::none()).await;
    let provisioners: [Box<dyn Provisioner>; 2] =
        [Box::new(common::primeintellect(&emulator)), Box::new(common::runpod(&emulator))];
    for provisioner in provisioners {
        let pod = create_on(provisioner.as_ref()).await;
        let ready = provisioner.wait_until_ready(&pod.id, Instant::now() + Duration::from_secs(10)).await.unwrap();
        let ssh = ready.ssh.expect("a ready pod has an SSH endpoint");
        let banner = gpucloud::providers::ssh::probe_banner(&ssh, Duration::from_secs(2)).await.unwrap();
        assert_eq!(format!("{banner}\r\n"), gpucloud_emulator::SSH_BANNER);
        // Terminated: the endpoint stops answering.
        provisioner.terminate_and_confirm(&pod.id, Instant::now() + Duration::from_secs(10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            gpucloud::providers::ssh::probe_banner(&ssh, Duration::from_secs(1)).await.is_err(),
            "{:?}",
            pod.provider
        );
    }
}

#[tokio::test]
async fn running_is_not_ready_until_ssh_answers() {
    let (ready_delay, banner_delay) = (Duration::from_millis(100), Duration::from_millis(1500));
    let emulator = common::emulator(ready_delay, silent_ssh_for(banner_delay)).await;
    let runpod = common::runpod(&emulator);
    let pod = create_on(&runpod).await;
    let started = Instant::now();
    let ready = runpod.wait_until_ready(&pod.id, Instant::now() + Duration::from_secs(15)).await.unwrap();
    assert!(started.elapsed() >= banner_delay, "waited {:?}: the banner came later", started.elapsed());
    assert!(ready.is_ready());

    // Status-only readiness returns as soon as the provider says running.
    let status_only = common::runpod(&emulator).with_readiness(Readiness::Status);
    let pod = create_on(&status_only).await;
    let started = Instant::now();
    status_only.wait_until_ready(&pod.id, Instant::now() + Duration::from_secs(15)).await.unwrap();
    assert!(started.elapsed() < banner_delay, "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn a_pod_that_runs_but_never_answers_times_out_typed_and_the_launch_cleans_up() {
    let emulator = common::emulator(Duration::from_millis(100), silent_ssh_for(Duration::from_secs(3600))).await;
    let pi = common::primeintellect(&emulator);
    let pod = create_on(&pi).await;
    let error = pi.wait_until_ready(&pod.id, Instant::now() + Duration::from_secs(2)).await.unwrap_err();
    let Error::Timeout { what, .. } = &error else { panic!("{error}") };
    assert!(what.contains("answer SSH") && what.contains("running"), "{what}");
    pi.terminate_and_confirm(&pod.id, Instant::now() + Duration::from_secs(10)).await.unwrap();

    let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
    let request = LaunchRequest { ready_timeout: Duration::from_secs(2), ..LaunchRequest::new("H100_80GB", 1, "ssh") };
    let error = fleet.launch(&request).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    assert!(emulator.live_pods().is_empty(), "the silent pod was terminated");
    assert!(emulator.all_pods().iter().any(|p| p.api == gpucloud_emulator::Api::RunPod));
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ me@example.com";
const OTHER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOTHERKEYxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ci@runner";

#[tokio::test]
async fn ensuring_a_key_is_idempotent_and_keeps_the_keys_already_there() {
    let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::none()).await;
    let runpod = common::runpod(&emulator);
    runpod.ensure_ssh_key(OTHER).await.unwrap();
    for provisioner in [&runpod as &dyn Provisioner, &common::primeintellect(&emulator)] {
        let first = provisioner.ensure_ssh_key(KEY).await.unwrap();
        let again =
            provisioner.ensure_ssh_key(&KEY.replace("me@example.com", "same key, other comment")).await.unwrap();
        assert_eq!(first, again, "{:?}", provisioner.provider());
        let listed = provisioner.list_ssh_keys().await.unwrap();
        assert_eq!(listed.iter().filter(|k| gpucloud::providers::ssh::same_key(&k.public_key, KEY)).count(), 1);
    }
    let runpod_keys: Vec<String> = runpod.list_ssh_keys().await.unwrap().into_iter().map(|k| k.public_key).collect();
    assert_eq!(runpod_keys, [OTHER, KEY], "RunPod's PUT replaces the set: the earlier key is kept");
    let requests = emulator.stats().requests;
    let error = runpod.ensure_ssh_key("-----BEGIN OPENSSH PRIVATE KEY-----").await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { field: "ssh_public_key", .. }), "{error}");
    assert_eq!(emulator.stats().requests, requests, "refused before any request");
}

#[tokio::test]
async fn a_launch_with_a_key_creates_pods_that_trust_it_on_both_clouds() {
    let emulator = common::keyless_emulator(Duration::from_millis(50), FaultConfig::none()).await;
    for provisioner in
        [Box::new(common::primeintellect(&emulator)) as Box<dyn Provisioner>, Box::new(common::runpod(&emulator))]
    {
        let fleet = Fleet::new().with_arc(provisioner.into());
        let request = LaunchRequest { ssh_public_key: Some(KEY.into()), ..LaunchRequest::new("H100_80GB", 1, "ssh") };
        let pod = fleet.launch(&request).await.unwrap();
        let emulated = emulator.live_pods().into_iter().find(|p| p.id == pod.id.id()).unwrap();
        assert_eq!(emulated.authorized_keys, [KEY], "{}", pod.provider);
        fleet.terminate(&pod.id).await.unwrap();
    }
    let bad = LaunchRequest { ssh_public_key: Some("not a key".into()), ..LaunchRequest::new("H100_80GB", 1, "ssh") };
    let error = common::fleet(&emulator).launch(&bad).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { field: "ssh_public_key", .. }), "{error}");
}

#[tokio::test]
async fn a_runpod_account_without_a_key_fails_fast_before_any_create() {
    let emulator = common::keyless_emulator(Duration::from_millis(50), FaultConfig::none()).await;
    let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
    let error = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "nokey")).await.unwrap_err();
    assert!(matches!(error, Error::NoSshKey { provider: gpucloud::Provider::RunPod }), "{error}");
    let message = error.to_string();
    assert!(message.contains("--ssh-key") && message.contains("Readiness::Status"), "says how to fix it: {message}");
    assert_eq!(emulator.stats().requests_by_route.get("POST /v2/pods"), None, "no pod was created");
    assert!(emulator.all_pods().is_empty());

    // With PrimeIntellect beside it, the launch moves on to PrimeIntellect's offers.
    let both = Fleet::new()
        .with(common::runpod(&emulator))
        .with(common::primeintellect(&emulator))
        .with_cleanup_timeout(Duration::from_secs(10));
    let key_reads = || emulator.stats().requests_by_route.get("GET /v2/account/ssh-keys").copied();
    let before = key_reads();
    let pod = both.launch(&LaunchRequest::new("H100_80GB", 1, "nokey")).await.unwrap();
    assert_eq!(pod.provider, gpucloud::Provider::PrimeIntellect);
    assert!(key_reads() <= before.map(|n| n + 1), "RunPod's keys are read once per launch, not per offer");
    both.terminate(&pod.id).await.unwrap();

    // Waiting for the status only is the caller's choice: the pod is created, and (as the
    // document says) it has no SSH access.
    let status_only = common::runpod(&emulator).with_readiness(Readiness::Status);
    let pod = create_on(&status_only).await;
    let ready = status_only.wait_until_ready(&pod.id, Instant::now() + Duration::from_secs(10)).await.unwrap();
    let ssh = ready.ssh.expect("the document reports an ssh block regardless");
    assert!(gpucloud::providers::ssh::probe_banner(&ssh, Duration::from_secs(1)).await.is_err(), "no key, no sshd");
    status_only.terminate_and_confirm(&pod.id, Instant::now() + Duration::from_secs(10)).await.unwrap();

    // A key registered later (e.g. in the console) is found on the next create.
    emulator.add_ssh_key(gpucloud_emulator::Api::RunPod, common::ACCOUNT_KEY);
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "haskey")).await.unwrap();
    assert!(gpucloud::providers::ssh::probe_banner(pod.ssh.as_ref().unwrap(), Duration::from_secs(2)).await.is_ok());
    fleet.terminate(&pod.id).await.unwrap();
}

#[tokio::test]
async fn a_primeintellect_pod_is_ready_only_once_its_image_is_installed() {
    let installation_time = Duration::from_millis(2500);
    let emulator = gpucloud_emulator::Emulator::start(gpucloud_emulator::EmulatorConfig {
        ready_delay: Duration::from_millis(100),
        installation_time,
        ..gpucloud_emulator::EmulatorConfig::default()
    })
    .await
    .unwrap();
    let pi = common::primeintellect(&emulator);
    let pod = create_on(&pi).await;
    let started = Instant::now();
    let mut seen = Vec::new();
    let ready = pi
        .wait_until_ready_reporting(&pod.id, Instant::now() + Duration::from_secs(15), &mut |pod| {
            seen.push((pod.installation_status.clone(), pod.installation_progress, pod.progress_text()));
        })
        .await
        .unwrap();
    assert!(started.elapsed() >= installation_time, "returned after {:?}, before the install", started.elapsed());
    assert_eq!(ready.installation_status.as_deref(), Some("FINISHED"));
    let installing: Vec<_> = seen.iter().filter(|(status, ..)| status.as_deref() == Some("ACTIVE")).collect();
    assert!(!installing.is_empty(), "{seen:?}");
    assert!(installing.iter().all(|(_, _, text)| text.starts_with("starting (image installing: ")), "{seen:?}");
    pi.terminate_and_confirm(&pod.id, Instant::now() + Duration::from_secs(10)).await.unwrap();

    // A deadline inside the install says where it stopped.
    let pod = create_on(&common::primeintellect(&emulator).with_readiness(Readiness::Status)).await;
    let error = pi.wait_until_ready(&pod.id, Instant::now() + Duration::from_millis(700)).await.unwrap_err();
    assert!(error.to_string().contains("image installing"), "{error}");
}
