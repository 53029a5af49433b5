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
    // PrimeIntellect's `Regions` enum has no "US": the country is sent as its region
    // (united_states; the strict emulator answers 422 to anything else) and offers outside the
    // country are dropped.
    let query = OfferQuery { regions: vec!["US".into()], ..OfferQuery::gpu("A100_80GB", 1) };
    let offers = pi.offers(&query).await.unwrap();
    assert!(!offers.is_empty() && offers.iter().all(|o| o.country.as_deref() == Some("US")), "{offers:?}");
    let before = emulator.stats().requests_by_route.get("GET /api/v1/availability/gpus").copied();
    // "H100 NVL" is H100_94GB, which is no PrimeIntellect GPUType.
    assert!(pi.offers(&OfferQuery::gpu("H100 NVL", 1)).await.unwrap().is_empty());
    let sent = emulator.stats().requests_by_route.get("GET /api/v1/availability/gpus").copied();
    assert_eq!(sent, before, "the strict emulator would have answered 422");
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

/// A distinct, well-formed ed25519 public key line for index `i`.
fn public_key(i: usize) -> String {
    use std::fmt::Write;
    // ssh-ed25519 wire format: string "ssh-ed25519", string of 32 key bytes.
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&(i as u64).to_be_bytes());
    blob.extend_from_slice(&key);
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in blob.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (j, b)| acc | (u32::from(*b) << (16 - 8 * j)));
        for j in 0..4 {
            if j <= chunk.len() {
                encoded.push(ALPHABET[((n >> (18 - 6 * j)) & 63) as usize] as char);
            } else {
                encoded.push('=');
            }
        }
    }
    let mut line = String::new();
    let _ = write!(line, "ssh-ed25519 {encoded} user{i}@host");
    line
}

#[tokio::test]
async fn primeintellect_ssh_keys_are_read_past_the_first_page() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let pi = common::primeintellect(&emulator);
    for i in 0..130 {
        pi.ensure_ssh_key(&public_key(i)).await.unwrap();
    }
    assert_eq!(pi.list_ssh_keys().await.unwrap().len(), 130);
    // The 121st key is on the second page: found, not uploaded again.
    let again = pi.ensure_ssh_key(&public_key(120)).await.unwrap();
    assert!(again.id.is_some());
    let pi_keys = emulator.ssh_keys().into_iter().filter(|k| k.api == gpucloud_emulator::Api::PrimeIntellect).count();
    assert_eq!(pi_keys, 130, "no duplicate upload");
}

#[tokio::test]
async fn a_full_page_with_a_priceless_offer_is_not_the_last_page() {
    let server = MockServer::start().await;
    let offer = |i: usize, priced: bool| {
        let prices = if priced { json!({"onDemand": 2.0, "currency": "USD"}) } else { json!({"currency": "USD"}) };
        json!({"cloudId": format!("c{i}"), "gpuType": "H100_80GB", "socket": "SXM5", "provider": "hyperstack",
               "gpuCount": 1, "gpuMemory": 80, "stockStatus": "Available", "security": "secure_cloud",
               "images": ["ubuntu_22_cuda_12"], "prices": prices})
    };
    for page in 1..=2usize {
        // Page 1: 100 offers, one of them without a price; page 2: 20 more.
        let items: Vec<_> = if page == 1 {
            (0..100).map(|i| offer(i, i != 7)).collect()
        } else {
            (100..120).map(|i| offer(i, true)).collect()
        };
        Mock::given(method("GET"))
            .and(path("/api/v1/availability/gpus"))
            .and(wiremock::matchers::query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": items, "totalCount": 120})))
            .mount(&server)
            .await;
    }
    let pi = gpucloud::PrimeIntellect::new(gpucloud::SecretString::from("pi-key"), Some(&server.uri())).unwrap();
    let offers = pi.offers(&OfferQuery { in_stock_only: false, ..OfferQuery::default() }).await.unwrap();
    assert_eq!(offers.len(), 119, "every priced offer of both pages");
}

#[tokio::test]
async fn runpod_stop_and_start_are_idempotent_and_actions_follow_the_document() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let runpod = common::runpod(&emulator);
    let fleet = gpucloud::Fleet::new().with(runpod.clone()).with_cleanup_timeout(Duration::from_secs(10));
    let request = LaunchRequest { wait: false, ..LaunchRequest::new("H100_80GB", 1, "actions") };
    let pod = fleet.launch(&request).await.unwrap();
    runpod.stop(&pod.id).await.unwrap();
    // A second stop (a retry whose first attempt landed) meets the documented 409 and succeeds.
    runpod.stop(&pod.id).await.expect("already stopped is success");
    let stopped = runpod.get(&pod.id).await.unwrap();
    assert_eq!(stopped.status, gpucloud::PodStatus::Stopped);
    // `cost` is "0.0 when EXITED": the running rate is not in the record, and a pod with only a
    // container disk bills nothing while stopped.
    assert_eq!((stopped.price_per_hour, stopped.price_now_per_hour), (None, Some(0.0)));
    let gpucloud::model::PodRecord::RunPod(raw) = &stopped.raw else { panic!() };
    assert_eq!(raw.cost, 0.0, "cost is 0.0 when EXITED");
    assert_eq!(serde_json::to_value(&raw.actions).unwrap(), json!(["start", "terminate"]));
    runpod.start(&pod.id).await.unwrap();
    runpod.start(&pod.id).await.expect("already running is success");
    // The emulator answers what the document says: 409 for an invalid action, 204 for terminate.
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let action = |name: &str| {
        http.post(format!("{}/v2/pods/{}/action", emulator.base_url(), pod.id.id()))
            .bearer_auth(emulator.api_key())
            .json(&json!({ "action": name }))
            .send()
    };
    assert_eq!(action("start").await.unwrap().status(), 409);
    let terminated = action("terminate").await.unwrap();
    assert_eq!(terminated.status(), 204);
    assert!(terminated.bytes().await.unwrap().is_empty());
    assert!(emulator.live_pods().is_empty());
}

#[test]
fn a_zero_poll_interval_is_clamped() {
    let runpod = gpucloud::RunPod::new(gpucloud::SecretString::from("k"), Some("http://127.0.0.1:9")).unwrap();
    let polled = runpod.with_poll_interval(Duration::ZERO);
    assert_eq!(polled.poll_interval(), gpucloud::providers::provisioner::MIN_POLL_INTERVAL);
}

#[tokio::test]
async fn the_default_image_lands_only_on_hosts_with_its_cuda() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = gpucloud::Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
    // Every emulated A100 host stops at CUDA 12.2; the default image needs 12.4: no offer is
    // tried (each create would be the documented capacity 400), and nothing is created.
    let error = fleet.launch(&LaunchRequest::new("A100_80GB", 1, "cuda")).await.unwrap_err();
    assert!(matches!(&error, Error::NoCapacity { attempts } if attempts.is_empty()), "{error}");
    assert_eq!(emulator.stats().requests_by_route.get("POST /v2/pods"), None);
    // An image of the caller's own states no CUDA need unless asked.
    let own =
        LaunchRequest { image: Some("ghcr.io/me/train:cuda11".into()), ..LaunchRequest::new("A100_80GB", 1, "own") };
    let pod = fleet.launch(&own).await.unwrap();
    let emulated = emulator.live_pods().into_iter().find(|p| p.id == pod.id.id()).unwrap();
    assert_eq!(emulated.cuda_version, "12.2");
    fleet.terminate(&pod.id).await.unwrap();
    // The default image on H100s: the floor is sent and met.
    let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "h100")).await.unwrap();
    let emulated = emulator.live_pods().into_iter().find(|p| p.id == pod.id.id()).unwrap();
    assert!(["12.4", "12.6", "12.8"].contains(&emulated.cuda_version.as_str()), "{}", emulated.cuda_version);
    fleet.terminate(&pod.id).await.unwrap();
    // A malformed floor is refused naming the field; PrimeIntellect has no such filter.
    let bad = LaunchRequest { min_cuda_version: Some("12".into()), ..LaunchRequest::new("H100_80GB", 1, "bad") };
    let error = fleet.launch(&bad).await.unwrap_err();
    assert!(error.to_string().contains("min_cuda_version"), "{error}");
    let pi = common::primeintellect(&emulator);
    let offer = pi.offers(&OfferQuery::gpu("H100_80GB", 1)).await.unwrap().remove(0);
    let spec = gpucloud::LaunchSpec { min_cuda_version: Some("12.4".into()), ..gpucloud::LaunchSpec::new(offer, "pi") };
    assert!(matches!(pi.create(&spec).await, Err(Error::Unsupported { .. })));
}

/// A RunPod pod record as the document's example has it, in a cluster, running at `cost`.
fn cluster_member(id: &str, cost: f64) -> serde_json::Value {
    json!({
        "id": id, "name": "slurm-node", "image": "runpod/pytorch:1.0.2", "args": "", "disk": 50,
        "ports": ["22/tcp"], "env": {}, "registry": null, "status": "RUNNING", "actions": ["stop", "terminate"],
        "mounts": {}, "gpu": {"id": "NVIDIA H100 80GB HBM3", "count": 8, "vcpuCount": 128, "memory": 1504},
        "cloud": "SECURE", "dataCenterId": "US-TX-3", "cudaVersion": "12.8",
        "ssh": {"proxy": null, "direct": null}, "template": null, "cost": cost, "locked": false,
        "cluster": {"id": "cluster_abc123", "rank": 0},
        "globalNetworking": {"enabled": false}, "runtime": null,
        "createdAt": "2026-06-01T12:00:00Z", "startedAt": "2026-06-01T12:02:00Z"
    })
}

#[tokio::test]
async fn the_burn_cap_reads_runpod_cluster_members_which_a_plain_list_leaves_out() {
    use futures::TryStreamExt as _;
    let test = "the_burn_cap_reads_runpod_cluster_members_which_a_plain_list_leaves_out";
    common::bounded(test, Duration::from_secs(30), async {
        let server = MockServer::start().await;
        // "excluded from `GET /v2/pods` by default (pass `includeClusterPods=true` to include them)".
        Mock::given(method("GET"))
            .and(path("/v2/pods"))
            .and(wiremock::matchers::query_param("includeClusterPods", "true"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "pods": [cluster_member("member", 23.92)],
                "pagination": {"nextCursor": null, "hasNextPage": false}
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/pods"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "pods": [], "pagination": {"nextCursor": null, "hasNextPage": false}
            })))
            .mount(&server)
            .await;
        let runpod = gpucloud::RunPod::new(gpucloud::SecretString::from("rp-key"), Some(&server.uri())).unwrap();
        let listed: Vec<gpucloud::Pod> = runpod.list().try_collect().await.unwrap();
        assert!(listed.is_empty(), "a plain list leaves cluster members out");
        let billing: Vec<gpucloud::Pod> = runpod.list_billing_pods().try_collect().await.unwrap();
        assert_eq!(billing.len(), 1);
        assert_eq!(gpucloud::fleet::spend::burn_rate(&billing[0]), Some(23.92), "the member counts at its cost");
    })
    .await;
}
