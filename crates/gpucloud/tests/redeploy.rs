//! A stopped pod whose host is full: started elsewhere from its configuration, the old one ended.

mod common;

use gpucloud::upkeep::redeploy::{Replaced, StartOutcome};
use gpucloud::{Error, LaunchRequest, Provider, Provisioner, VolumeSpec};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pod_on_a_full_host_is_redeployed_next_to_its_volume() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = common::fleet(&emulator);
    let runpod = common::runpod(&emulator);
    let volume = runpod
        .create_volume(&VolumeSpec {
            name: "data".into(),
            size_gb: 50,
            data_center: Some("EU-RO-1".into()),
            ..VolumeSpec::default()
        })
        .await
        .unwrap();
    let mut request = LaunchRequest::new("H100_80GB", 1, "train");
    request.volume_ids = vec![volume.id.clone()];
    request.env.insert("STAGE".into(), "2".into());
    request.ttl = Some(Duration::from_secs(7200));
    let pod = fleet.launch(&request).await.unwrap();
    assert_eq!(pod.provider, Provider::RunPod);
    fleet.stop(&pod.id).await.unwrap();

    // A start on its own host when that host is free: started, nothing launched.
    let creates = emulator.stats().creates;
    assert!(matches!(fleet.start_or_redeploy(&pod.id).await.unwrap(), StartOutcome::Started));
    assert_eq!(emulator.stats().creates, creates);
    fleet.stop(&pod.id).await.unwrap();

    // Its host fills up: a plain start is HostFull; --or-redeploy replaces it.
    emulator.set_stocked_out(pod.id.id(), true);
    assert!(matches!(fleet.start(&pod.id).await, Err(Error::HostFull { .. })));
    let StartOutcome::Redeployed { pod: new, replaced } = fleet.start_or_redeploy(&pod.id).await.unwrap() else {
        panic!("expected a redeploy");
    };
    assert!(matches!(&replaced, Replaced::Terminated(id) if *id == pod.id), "{replaced:?}");
    assert_ne!(new.id, pod.id);
    assert_eq!(new.data_center.as_deref(), Some("EU-RO-1"), "placed next to its network volume");
    assert!(new.name.starts_with("train-"), "{}", new.name);
    let lease_left = new.lease_expires_at.unwrap() - chrono::Utc::now();
    // The rest of the old lease (each stamp rounds up to the second).
    assert!(
        lease_left <= chrono::Duration::seconds(7202) && lease_left > chrono::Duration::seconds(7000),
        "{lease_left}"
    );
    let emulated = emulator.live_pods();
    assert_eq!(emulated.len(), 1, "the stopped pod is gone: {emulated:?}");
    assert_eq!(emulated[0].env.get("STAGE").map(String::as_str), Some("2"));
    assert_eq!(emulated[0].mounts["network"][0]["volumeId"], volume.id.as_str());
    assert_eq!(emulated[0].gpu_type, "NVIDIA H100 80GB HBM3");

    // PrimeIntellect has no stop, so nothing to start: typed, before any request.
    let pi_id: gpucloud::PodId = "primeintellect:0123456789abcdef0123456789abcdef".parse().unwrap();
    assert!(matches!(
        fleet.start_or_redeploy(&pi_id).await,
        Err(Error::Unsupported { provider: Provider::PrimeIntellect, .. })
    ));
    fleet.terminate(&new.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_wipes_the_container_disk_and_keeps_what_is_on_a_volume() {
    let test = "a_start_wipes_the_container_disk_and_keeps_what_is_on_a_volume";
    common::bounded(test, Duration::from_secs(60), async {
        let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = common::fleet(&emulator).only(&[Provider::RunPod]);
        let runpod = common::runpod(&emulator);
        let volume = runpod
            .create_volume(&VolumeSpec {
                name: "data".into(),
                size_gb: 50,
                data_center: Some("EU-RO-1".into()),
                ..VolumeSpec::default()
            })
            .await
            .unwrap();
        let bare = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "bare")).await.unwrap();
        let mounted =
            LaunchRequest { volume_ids: vec![volume.id.clone()], ..LaunchRequest::new("H100_80GB", 1, "vol") };
        let mounted = fleet.launch(&mounted).await.unwrap();
        assert!(!bare.keeps_files_across_restart() && mounted.keeps_files_across_restart());
        // Files on each pod's disk (an emulated pod's commands run in its directory; the volume
        // is mounted at /workspace, its `workspace`).
        let home = |id: &str| emulator.pod_dir(gpucloud_emulator::Api::RunPod, id);
        for pod in [&bare, &mounted] {
            common::write_file(&home(pod.id.id()).join("checkpoint.pt"), "precious");
            common::write_file(&home(pod.id.id()).join("workspace/checkpoint.pt"), "precious");
        }
        for pod in [&bare, &mounted] {
            fleet.stop(&pod.id).await.unwrap();
            fleet.start(&pod.id).await.unwrap();
        }
        // "Container disk in GB (ephemeral, wiped on restart)".
        assert!(!home(bare.id.id()).join("checkpoint.pt").exists());
        assert!(!home(bare.id.id()).join("workspace/checkpoint.pt").exists(), "no volume: nothing survives");
        assert!(!home(mounted.id.id()).join("checkpoint.pt").exists());
        assert!(home(mounted.id.id()).join("workspace/checkpoint.pt").exists(), "the volume's files survive");
        for pod in [&bare, &mounted] {
            fleet.terminate(&pod.id).await.unwrap();
        }
    })
    .await;
}
