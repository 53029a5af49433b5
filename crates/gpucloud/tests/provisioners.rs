//! Every `Provisioner` method, for both providers, against the emulator.

mod common;

use futures::TryStreamExt;
use gpucloud::{Error, LaunchSpec, OfferQuery, PodStatus, Provider, Provisioner, VolumeSpec};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;
use tokio::time::Instant;

async fn lifecycle(provisioner: &dyn Provisioner, emulator: &gpucloud_emulator::Emulator) {
    let offers = provisioner.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    assert!(!offers.is_empty(), "{:?} has H100 offers", provisioner.provider());
    assert!(
        offers.iter().all(|o| o.gpu_type == "H100_80GB" && o.gpu_count == 1 && o.provider == provisioner.provider())
    );

    let mut spec = LaunchSpec::new(offers[0].clone(), "lifecycle");
    spec.disk_gb = Some(100);
    let pod = provisioner.create(&spec).await.unwrap();
    assert_eq!(pod.provider, provisioner.provider());
    assert!(pod.name.starts_with("lifecycle-gc"), "{}", pod.name);
    assert_eq!(emulator.live_pods().len(), 1);

    let ready = provisioner.wait_until_ready(&pod.id, Instant::now() + Duration::from_secs(5)).await.unwrap();
    assert_eq!(ready.status, PodStatus::Running);
    assert!(ready.ssh.is_some());
    assert!(ready.created_at.is_some());
    assert_eq!(provisioner.get(&pod.id).await.unwrap().id, pod.id);

    let listed: Vec<_> = provisioner.list().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, pod.id);

    if provisioner.capabilities().stop_start {
        provisioner.stop(&pod.id).await.unwrap();
        assert_eq!(provisioner.get(&pod.id).await.unwrap().status, PodStatus::Stopped);
        provisioner.start(&pod.id).await.unwrap();
        assert_eq!(provisioner.get(&pod.id).await.unwrap().status, PodStatus::Running);
    } else {
        assert!(matches!(provisioner.stop(&pod.id).await, Err(Error::Unsupported { operation: "stop", .. })));
        assert!(matches!(provisioner.start(&pod.id).await, Err(Error::Unsupported { operation: "start", .. })));
    }

    provisioner.terminate_and_confirm(&pod.id, Instant::now() + Duration::from_secs(5)).await.unwrap();
    // Idempotent: terminating again is success.
    provisioner.terminate(&pod.id).await.unwrap();
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test]
async fn primeintellect_pod_lifecycle() {
    let emulator = common::emulator(Duration::from_millis(200), FaultConfig::none()).await;
    lifecycle(&common::primeintellect(&emulator), &emulator).await;
}

#[tokio::test]
async fn runpod_pod_lifecycle() {
    let emulator = common::emulator(Duration::from_millis(200), FaultConfig::none()).await;
    lifecycle(&common::runpod(&emulator), &emulator).await;
}

#[tokio::test]
async fn volumes_on_both_providers() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let pi = common::primeintellect(&emulator);
    let rp = common::runpod(&emulator);
    let spec = VolumeSpec {
        name: "data".into(),
        size_gb: 100,
        data_center: Some("US-KS-2".into()),
        provider_type: Some("runpod".into()),
        ..VolumeSpec::default()
    };
    for provisioner in [&pi as &dyn Provisioner, &rp] {
        let volume = provisioner.create_volume(&spec).await.unwrap();
        assert_eq!(volume.size_gb, 100);
        let listed = provisioner.list_volumes().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, volume.id);
        provisioner.delete_volume(&volume.id).await.unwrap();
        provisioner.delete_volume(&volume.id).await.unwrap();
        assert!(provisioner.list_volumes().await.unwrap().is_empty());
    }
    let err =
        rp.create_volume(&VolumeSpec { name: "x".into(), size_gb: 10, ..VolumeSpec::default() }).await.unwrap_err();
    assert!(err.to_string().contains("data_center"), "{err}");
}

#[tokio::test]
async fn primeintellect_offers_follow_the_query() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let pi = common::primeintellect(&emulator);
    let mut query = OfferQuery::gpu("nvidia h100 80gb hbm3", 1);
    query.regions = vec!["canada".into(), "eu_north".into()];
    let offers = pi.offers(&query).await.unwrap();
    assert!(!offers.is_empty());
    assert!(offers.iter().all(|o| matches!(o.region.as_deref(), Some("canada" | "eu_north"))));
    query.spot = Some(true);
    let spot = pi.offers(&query).await.unwrap();
    assert!(!spot.is_empty() && spot.iter().all(|o| o.spot));
    let offer = &offers[0];
    assert!(offer.via.is_some() && offer.disk.is_some() && !offer.images.is_empty());
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_request() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let pi = common::primeintellect(&emulator);
    let offer = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap().remove(0);
    let before = emulator.stats().requests;
    let mut spec = LaunchSpec::new(offer.clone(), "ok");
    spec.disk_gb = Some(5);
    let err = pi.create(&spec).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field: "disk_gb", message } if message.contains("50..=2000")),
        "{err}"
    );
    let mut spec = LaunchSpec::new(offer, "ok");
    spec.image = Some("not-an-image".into());
    assert!(matches!(pi.create(&spec).await, Err(Error::InvalidInput { field: "image", .. })));
    let err = pi.offers(&OfferQuery { gpu_count: Some(0), ..OfferQuery::default() }).await.unwrap_err();
    assert!(err.to_string().contains("gpu_count"));
    assert_eq!(emulator.stats().requests, before, "nothing was sent");
}

#[tokio::test]
async fn a_pod_of_another_provider_is_refused() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let pi = common::primeintellect(&emulator);
    let id = gpucloud::PodId::new(Provider::RunPod, "abc");
    assert!(matches!(pi.get(&id).await, Err(Error::InvalidInput { field: "pod id", .. })));
}

#[tokio::test]
async fn wrong_key_is_a_typed_401_without_the_key() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::none()).await;
    let rp =
        gpucloud::RunPod::new(gpucloud::SecretString::from("wrong-key-123456".to_string()), Some(&emulator.base_url()))
            .unwrap();
    let err = rp.list().try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains("wrong-key-123456"));
    assert!(!err.is_retryable());
}
