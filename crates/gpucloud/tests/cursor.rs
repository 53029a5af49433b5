//! RunPod's cursor pagination (document 953afcc) end to end: the strict emulator's pages, the
//! facade following them for `list`, the status sweep and the reaper, and what a broken server
//! does to a listing; plus the document's other additions to pod creates (`cmd`, `entrypoint`,
//! per-GPU placement filters, 413).

mod common;

use futures::TryStreamExt;
use gpucloud::{Error, LaunchRequest, Pagination, Provisioner, ReapPolicy, RetryPolicy, RunPod, SecretString};
use gpucloud_emulator::{Api, FaultConfig};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A plain HTTP client, to send what the SDK would refuse to.
fn http() -> reqwest::Client {
    reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap()
}

fn runpod_fleet(emulator: &gpucloud_emulator::Emulator) -> gpucloud::Fleet {
    gpucloud::Fleet::new().with(common::runpod(emulator)).with_cleanup_timeout(Duration::from_secs(10))
}

fn list_requests(emulator: &gpucloud_emulator::Emulator) -> u64 {
    emulator.stats().requests_by_route.get("GET /v2/pods").copied().unwrap_or(0)
}

#[tokio::test]
async fn an_account_of_2500_pods_is_listed_in_full_in_pages() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    emulator.seed_pods(Api::RunPod, 2500);

    // The default: `limit` 1000, the document's maximum: three pages.
    let runpod = common::runpod(&emulator);
    let pods: Vec<_> = runpod.list().try_collect().await.unwrap();
    assert_eq!(pods.len(), 2500);
    let mut names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names[0], "seeded-2499", "newest first");
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 2500, "no pod twice");
    assert_eq!(list_requests(&emulator), 3);

    // Smaller pages: one request per page, never stopping on a count.
    let small = common::runpod(&emulator).with_pagination(Pagination { page_size: 100, ..Pagination::runpod() });
    let pods: Vec<_> = small.list().try_collect().await.unwrap();
    assert_eq!(pods.len(), 2500);
    assert_eq!(list_requests(&emulator), 3 + 25);
}

#[tokio::test]
async fn the_reaper_and_fleet_list_see_every_page() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    emulator.seed_pods(Api::RunPod, 2500);
    let fleet = gpucloud::Fleet::new()
        .with(common::runpod(&emulator).with_pagination(Pagination { page_size: 500, ..Pagination::runpod() }));
    let (pods, failures) = fleet.list().await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(pods.len(), 2500);
    assert_eq!(list_requests(&emulator), 5);
    // The oldest pods come last, on the fifth page: a one-page reader would never see them.
    let policy = ReapPolicy::expired_leases().with_prefix_older_than("seeded-", Duration::ZERO).dry_run();
    let report = fleet.reap(&policy).await.unwrap();
    assert_eq!(report.examined, 2500);
    assert_eq!(report.reaped.len(), 2500);
    assert!(report.reaped.iter().any(|p| p.name == "seeded-0"));
    assert_eq!(list_requests(&emulator), 10);
}

#[tokio::test]
async fn the_status_sweep_finds_pods_on_later_pages() {
    let emulator = common::emulator(Duration::from_secs(1), FaultConfig::default()).await;
    let runpod = common::runpod(&emulator).with_pagination(Pagination { page_size: 10, ..Pagination::runpod() });
    let fleet = gpucloud::Fleet::new().with(runpod.clone()).with_cleanup_timeout(Duration::from_secs(10));
    let request = LaunchRequest { wait: false, ..LaunchRequest::new("H100_80GB", 1, "oldest") };
    let (first, second) = (fleet.launch(&request).await.unwrap(), fleet.launch(&request).await.unwrap());
    // 35 newer pods push both to the fourth page of ten.
    emulator.seed_pods(Api::RunPod, 35);
    let single_reads = |e: &gpucloud_emulator::Emulator| e.stats().requests_by_route.get("GET /v2/pods/{id}").copied();
    let before = single_reads(&emulator);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (a, b) =
        tokio::join!(runpod.wait_until_ready(&first.id, deadline), runpod.wait_until_ready(&second.id, deadline));
    assert_eq!((a.unwrap().id, b.unwrap().id), (first.id.clone(), second.id.clone()));
    // Two waiters share one sweep per 50 ms poll for about a second. Had the sweep read only the
    // first page, it would have missed both pods every time and read each alone (two single
    // reads per sweep, some forty in all). Reading every page, a pod is read alone only while
    // it is the last one waiting: the two were created a few milliseconds apart, so at most a
    // poll or two of that, whatever the machine's load.
    let alone = single_reads(&emulator).unwrap_or(0) - before.unwrap_or(0);
    assert!(alone <= 6, "{alone} single reads: the sweep did not find the pods in the paged list");
    fleet.terminate(&first.id).await.unwrap();
    fleet.terminate(&second.id).await.unwrap();
}

#[tokio::test]
async fn the_emulator_refuses_what_the_document_refuses() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    emulator.seed_pods(Api::RunPod, 3);
    let http = http();
    let get = |query: &str| {
        http.get(format!("{}/v2/pods{query}", emulator.base_url())).bearer_auth(emulator.api_key()).send()
    };
    // PaginationLimit: 1-1000.
    for query in ["?limit=0", "?limit=1001", "?limit=ten", "?cursor="] {
        let response = get(query).await.unwrap();
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    // A malformed or foreign cursor: 422.
    let first: Value = get("?limit=2").await.unwrap().json().await.unwrap();
    assert_eq!(first["pods"].as_array().unwrap().len(), 2);
    assert_eq!(first["pagination"]["hasNextPage"], true);
    let cursor = first["pagination"]["nextCursor"].as_str().unwrap().to_string();
    assert_eq!(get("?cursor=Y3JlYXRlZEF0PTE3NDg3ODA0MDA").await.unwrap().status(), 422);
    let foreign = get(&format!("?cursor={cursor}&includeClusterPods=true")).await.unwrap();
    assert_eq!(foreign.status(), 422, "a cursor is only valid for the parameters that issued it");
    let last: Value = get(&format!("?limit=2&cursor={cursor}")).await.unwrap().json().await.unwrap();
    assert_eq!(last["pods"].as_array().unwrap().len(), 1);
    assert_eq!(last["pagination"], json!({"nextCursor": null, "hasNextPage": false}));
}

fn page(pods: Vec<Value>, next: Option<&str>) -> Value {
    json!({"pods": pods, "pagination": {"nextCursor": next, "hasNextPage": next.is_some()}})
}

fn wired(server: &MockServer) -> RunPod {
    RunPod::new(SecretString::from("rp-cursor-test"), Some(&server.uri()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast())
}

#[tokio::test]
async fn a_server_that_repeats_a_cursor_gives_an_error_not_a_partial_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], Some("c1"))))
        .mount(&server)
        .await;
    // Every later page points back at the same cursor.
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .and(query_param("cursor", "c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], Some("c1"))))
        .mount(&server)
        .await;
    let result: Result<Vec<_>, Error> = wired(&server).list().try_collect().await;
    match result {
        Err(Error::Pagination { pages: 2, message, .. }) => assert!(message.contains("second time"), "{message}"),
        other => panic!("expected a pagination error, got {other:?}"),
    }
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 2);
    assert!(received[0].url.query().unwrap_or("").contains("limit=1000"), "{}", received[0].url);
}

#[tokio::test]
async fn create_sends_cmd_entrypoint_and_placement_filters_as_documented() {
    let emulator = common::emulator(Duration::from_millis(100), FaultConfig::default()).await;
    let fleet = runpod_fleet(&emulator);
    let mut request = LaunchRequest::new("H100_80GB", 2, "cmd");
    request.command = Some(vec!["--model".into(), "llama 3".into()]);
    request.entrypoint = Some(vec!["/bin/bash".into(), "-c".into()]);
    request.min_ram_per_gpu_gb = Some(64);
    request.min_vcpus_per_gpu = Some(8);
    request.wait = false;
    let pod = fleet.launch(&request).await.unwrap();
    let gpucloud::model::PodRecord::RunPod(raw) = &pod.raw else { panic!("not a RunPod pod") };
    assert_eq!(raw.cmd, vec!["--model", "llama 3"]);
    assert_eq!(raw.entrypoint, vec!["/bin/bash", "-c"]);
    // Pod.gpu carries the totals the document now requires.
    let gpu = raw.gpu.as_ref().unwrap();
    assert!(gpu.vcpu_count >= 16.0 && gpu.memory >= 128.0, "{gpu:?}");
    fleet.terminate(&pod.id).await.unwrap();

    // A filter no host meets is the documented capacity refusal (400), tried per candidate.
    request.min_ram_per_gpu_gb = Some(4096);
    let error = fleet.launch(&request).await.unwrap_err();
    assert!(
        matches!(&error, Error::NoCapacity { attempts } if attempts.iter().all(|a| a.error.status() == Some(400))),
        "{error}"
    );
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test]
async fn container_settings_are_refused_before_any_request_where_they_do_not_apply() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = runpod_fleet(&emulator);
    let mut request = LaunchRequest::new("H100_80GB", 1, "zero");
    request.min_vcpus_per_gpu = Some(0);
    let error = fleet.launch(&request).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("min_vcpus_per_gpu") && text.contains("at least 1"), "{text}");

    let fleet = gpucloud::Fleet::new().with(common::primeintellect(&emulator));
    let mut request = LaunchRequest::new("H100_80GB", 1, "pi");
    request.command = Some(vec!["python".into(), "train.py".into()]);
    let error = fleet.launch(&request).await.unwrap_err();
    let Error::NoCapacity { attempts } = &error else { panic!("{error}") };
    assert!(!attempts.is_empty());
    assert!(attempts.iter().all(|a| matches!(a.error, Error::Unsupported { .. })), "{error}");
    assert_eq!(emulator.stats().creates, 0, "nothing was sent");
}

#[tokio::test]
async fn an_oversized_create_is_refused_before_sending_and_a_413_is_typed() {
    let emulator = common::emulator(Duration::ZERO, FaultConfig::default()).await;
    let fleet = runpod_fleet(&emulator);
    let mut request = LaunchRequest::new("H100_80GB", 1, "big");
    request.env.insert("BLOB".into(), "x".repeat(110_000));
    let error = fleet.launch(&request).await.unwrap_err();
    match &error {
        Error::RequestTooLarge { size: Some(size), limit: 102_400, sent: false, .. } => assert!(*size > 110_000),
        other => panic!("expected RequestTooLarge, got {other}"),
    }
    assert!(error.to_string().contains("102400-byte limit"), "{error}");
    assert_eq!(emulator.stats().requests_by_route.get("POST /v2/pods"), None, "nothing was sent");

    // The emulator itself answers 413 past the limit, as the document says.
    let response = http()
        .post(format!("{}/v2/pods", emulator.base_url()))
        .bearer_auth(emulator.api_key())
        .body(format!(r#"{{"name": "x", "image": "y", "env": {{"A": "{}"}}}}"#, "x".repeat(103_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // A 413 from the server (inherited template settings) is the same typed error, sent once.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/pods"))
        .respond_with(
            ResponseTemplate::new(413).insert_header("content-type", "application/problem+json").set_body_json(
                json!({"title": "Payload Too Large", "status": 413, "detail": "exceeds the 102400 byte limit"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/account/ssh-keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [common::ACCOUNT_KEY]})))
        .mount(&server)
        .await;
    let offers = common::runpod(&emulator).offers(&gpucloud::OfferQuery::gpu("H100_80GB", 1)).await.unwrap();
    let spec = gpucloud::LaunchSpec::new(offers[0].clone(), "small");
    let error = wired(&server).create(&spec).await.unwrap_err();
    assert!(matches!(error, Error::RequestTooLarge { sent: true, limit: 102_400, .. }), "{error}");
    assert!(!error.is_retryable());
    let creates = server.received_requests().await.unwrap().into_iter().filter(|r| r.method.as_str() == "POST").count();
    assert_eq!(creates, 1, "never re-sent");
}
