//! Documented answers the SDK must take as the documents mean them, against the strict emulator
//! or wiremock serving the documented bodies.

mod common;

use gpucloud::{Error, LaunchRequest, OfferQuery, Provisioner, VolumeSpec};
use gpucloud_emulator::FaultConfig;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn values_outside_primeintellects_enums_are_never_sent_to_it() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    // RunPod spells regions by data center; PrimeIntellect's `Regions` enum has no "US".
    let query = OfferQuery { regions: vec!["US".into()], ..OfferQuery::gpu("H100_80GB", 1) };
    assert!(pi.offers(&query).await.unwrap().is_empty());
    // "H100 NVL" is H100_94GB, which is no PrimeIntellect GPUType.
    assert!(pi.offers(&OfferQuery::gpu("H100 NVL", 1)).await.unwrap().is_empty());
    let sent = emulator.stats().requests_by_route.get("GET /api/v1/availability/gpus").copied();
    assert_eq!(sent, None, "the strict emulator would have answered 422");
    // Inside the enums, offers come back.
    let query =
        OfferQuery { regions: vec!["canada".into(), "united_states".into()], ..OfferQuery::gpu("H100_80GB", 1) };
    assert!(!pi.offers(&query).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_disk_created_with_201_as_the_guide_says_is_a_success() {
    // Seed 1 answers 201 (the disk guide), seed 2 answers 200 (the document).
    for seed in [1, 2] {
        let emulator = gpucloud_emulator::Emulator::start(gpucloud_emulator::EmulatorConfig {
            seed,
            ..gpucloud_emulator::EmulatorConfig::default()
        })
        .await
        .unwrap();
        let pi = common::primeintellect(&emulator);
        let spec = VolumeSpec {
            name: "data".into(),
            size_gb: 100,
            provider_type: Some("runpod".into()),
            ..VolumeSpec::default()
        };
        let volume = pi.create_volume(&spec).await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(volume.size_gb, 100);
    }
}

#[tokio::test]
async fn a_refused_request_is_reported_as_such_with_fastapis_message_not_as_no_capacity() {
    let server = MockServer::start().await;
    let items: Vec<_> = (0..3)
        .map(|i| {
            json!({"cloudId": format!("c{i}"), "gpuType": "H100_80GB", "socket": "SXM5", "provider": "hyperstack",
            "gpuCount": 1, "gpuMemory": 80, "stockStatus": "Available", "security": "secure_cloud",
            "dataCenter": "CANADA-1", "country": "CA", "images": ["ubuntu_22_cuda_12"],
            "prices": {"onDemand": 2.0 + f64::from(i), "currency": "USD"}})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/api/v1/availability/gpus"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": items, "totalCount": items.len()})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/pods/"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"detail": [
            {"type": "missing", "loc": ["body", "pod", "dataCenterId"], "msg": "Field required", "input": null}]})))
        .mount(&server)
        .await;
    let pi = gpucloud::PrimeIntellect::new(gpucloud::SecretString::from("pi-key"), Some(&server.uri()))
        .unwrap()
        .with_retry_policy(gpucloud::RetryPolicy::fast());
    let fleet = gpucloud::Fleet::new().with(pi);
    let error = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "refused")).await.unwrap_err();
    match &error {
        Error::Api { status: 422, message, .. } => assert_eq!(message, "body.pod.dataCenterId: Field required"),
        other => panic!("expected the 422 itself, got {other}"),
    }
    let creates = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "POST").count();
    assert_eq!(creates, 1, "the same request is not sent for every other offer");
}
