//! Every answer the facade reads from the emulator, checked against the upstream document's
//! response schema for its status: the oracle answers as the documents say the APIs do.

mod common;

use futures::StreamExt as _;
use gpucloud::{Error, Fleet, LaunchRequest, LogOptions, OfferQuery, PodId, Provider, Provisioner, VolumeSpec};
use gpucloud_emulator::{Emulator, EmulatorConfig};
use std::time::Duration;
use tokio::time::Instant;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ me@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_the_facade_reads_matches_the_documents() {
    let emulator = Emulator::start(EmulatorConfig {
        ready_delay: Duration::from_millis(50),
        check_responses: true,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let (pi, runpod) = (common::primeintellect(&emulator), common::runpod(&emulator));
    let provisioners: [&dyn Provisioner; 2] = [&pi, &runpod];
    let deadline = || Instant::now() + Duration::from_secs(20);
    for provisioner in provisioners {
        let provider = provisioner.provider();
        provisioner.ensure_ssh_key(KEY).await.unwrap();
        provisioner.list_ssh_keys().await.unwrap();
        let offers = provisioner.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
        let mut spec = gpucloud::LaunchSpec::new(offers[0].clone(), "checked");
        spec.ssh_key_id = provisioner.list_ssh_keys().await.unwrap().into_iter().find_map(|k| k.id);
        let pod = provisioner.create(&spec).await.unwrap();
        provisioner.wait_until_ready(&pod.id, deadline()).await.unwrap();
        provisioner.get(&pod.id).await.unwrap();
        let listed: Vec<_> = provisioner.list().collect().await;
        assert!(listed.iter().all(Result::is_ok), "{provider}");
        if provisioner.capabilities().extend_lease {
            provisioner.extend_lease(&pod.id, Duration::from_secs(3600)).await.unwrap();
        }
        let lines: Vec<_> = provisioner.logs(&pod.id, LogOptions { tail: 5, follow: false }).collect().await;
        assert!(lines.iter().all(Result::is_ok), "{provider}: {lines:?}");
        if provider == Provider::RunPod {
            provisioner.stop(&pod.id).await.unwrap();
            provisioner.start(&pod.id).await.unwrap();
        }
        provisioner.terminate_and_confirm(&pod.id, deadline()).await.unwrap();
        // Error answers are documented too.
        let missing = PodId::new(provider, "0000000000000000");
        assert!(provisioner.get(&missing).await.unwrap_err().is_not_found());
        let volume = VolumeSpec {
            name: "checked".into(),
            size_gb: 100,
            data_center: (provider == Provider::RunPod).then(|| "US-KS-2".into()),
            provider_type: (provider == Provider::PrimeIntellect).then(|| "runpod".into()),
            ..VolumeSpec::default()
        };
        let created = provisioner.create_volume(&volume).await.unwrap();
        provisioner.list_volumes().await.unwrap();
        provisioner.delete_volume(&created.id).await.unwrap();
    }
    pi.teams().await.unwrap();
    // A launch through the fleet, and a request the document refuses.
    let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "fleet")).await.unwrap();
    fleet.terminate(&pod.id).await.unwrap();
    let refused = LaunchRequest { min_ram_per_gpu_gb: Some(100_000), ..LaunchRequest::new("H100_80GB", 1, "big") };
    assert!(matches!(fleet.launch(&refused).await, Err(Error::NoCapacity { .. })), "no host that big: 400s");

    let checks = emulator.response_checks();
    assert!(checks.violations.is_empty(), "answers outside the documents: {:#?}", checks.violations);
    for route in [
        "GET /api/v1/availability/gpus 200",
        "POST /api/v1/pods/ 200",
        "GET /api/v1/pods/ 200",
        "GET /api/v1/ssh_keys/ 200",
        "GET /v2/catalog/gpus 200",
        "POST /v2/pods 201",
        "GET /v2/pods 200",
        "GET /v2/pods/{id} 200",
        "GET /v2/pods/{id} 404",
        "PATCH /v2/pods/{id} 200",
        "GET /v2/account/ssh-keys 200",
        "GET /v2/network-volumes 200",
        "POST /v2/pods 400",
    ] {
        assert!(checks.checked.contains_key(route), "{route} was never checked: {:?}", checks.checked.keys());
    }
}
