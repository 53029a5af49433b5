//! Coalesced status watching ([`gpucloud::providers::watch`]): waiting on many pods costs one status sweep
//! per poll interval per provider, not one request per pod.

mod common;

use async_trait::async_trait;
use futures::stream::BoxStream;
use gpucloud::{
    Capabilities, Error, LaunchSpec, Offer, OfferQuery, Pod, PodId, PrimeIntellect, Provider, Provisioner, Readiness,
    RetryPolicy, RunPod, SecretString, Volume, VolumeSpec,
};
use gpucloud_emulator::{Emulator, FaultConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RUNPOD_SWEEP: &str = "GET /v2/pods";
const RUNPOD_SINGLE: &str = "GET /v2/pods/{id}";
const PI_SWEEP: &str = "GET /api/v1/pods/status";
const PI_SINGLE: &str = "GET /api/v1/pods/{id}";

/// Requests per route since `before`.
fn since(emulator: &Emulator, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let now = emulator.stats().requests_by_route;
    now.into_iter()
        .map(|(route, n)| {
            let earlier = before.get(&route).copied().unwrap_or(0);
            (route, n - earlier)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn count(requests: &BTreeMap<String, u64>, route: &str) -> u64 {
    requests.get(route).copied().unwrap_or(0)
}

async fn create_pods(provisioner: &Arc<dyn Provisioner>, n: usize) -> Vec<PodId> {
    let query = OfferQuery::gpu("H100_80GB", 1);
    let offer = provisioner.offers(&query).await.unwrap().remove(0);
    let creates = (0..n).map(|i| {
        let spec = LaunchSpec::new(offer.clone(), format!("w{i}"));
        async move { provisioner.create(&spec).await.unwrap().id }
    });
    futures::future::join_all(creates).await
}

async fn wait_all(provisioner: &Arc<dyn Provisioner>, ids: &[PodId], deadline: Instant) -> Vec<Pod> {
    let waits = ids.iter().map(|id| provisioner.wait_until_ready(id, deadline));
    futures::future::join_all(waits).await.into_iter().map(|r| r.expect("every pod becomes ready")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pods_waited_on_at_once_cost_one_status_sweep_per_interval_per_provider() {
    const PODS: usize = 200;
    let interval = Duration::from_millis(250);
    let emulator = common::emulator(Duration::from_secs(4), FaultConfig::none()).await;
    let runpod: Arc<dyn Provisioner> = Arc::new(common::runpod(&emulator).with_poll_interval(interval));
    let pi: Arc<dyn Provisioner> = Arc::new(common::primeintellect(&emulator).with_poll_interval(interval));
    let (rp_ids, pi_ids) = tokio::join!(create_pods(&runpod, PODS), create_pods(&pi, PODS));

    let before = emulator.stats().requests_by_route;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let (rp_pods, pi_pods) = tokio::join!(wait_all(&runpod, &rp_ids, deadline), wait_all(&pi, &pi_ids, deadline));
    let waited = started.elapsed();
    let requests = since(&emulator, &before);
    println!("{PODS} + {PODS} pods waited on for {waited:?}, interval {interval:?}: {requests:?}");

    assert!(rp_pods.iter().chain(&pi_pods).all(Pod::is_ready));
    // Sweeps are at least one interval apart: at most one per interval started, plus the first.
    let intervals = (waited.as_secs_f64() / interval.as_secs_f64()).ceil() as u64 + 1;
    // Each sweep is one request: the list, or, once a single pod is left waiting (the last ones
    // to become ready), a read of that pod alone. Never both, never one per pod.
    let runpod_reads = count(&requests, RUNPOD_SWEEP) + count(&requests, RUNPOD_SINGLE);
    assert!(runpod_reads <= intervals, "RunPod: one status request per interval: {requests:?}");
    // 200 PrimeIntellect ids (32 hex characters) do not fit one query of MAX_STATUS_QUERY_BYTES:
    // a sweep of all of them is split in two.
    let pi_reads = count(&requests, PI_SWEEP) + count(&requests, PI_SINGLE);
    assert!(pi_reads <= 2 * intervals, "PrimeIntellect: one split sweep per interval: {requests:?}");
    assert!(count(&requests, RUNPOD_SWEEP) >= 4, "the pods provisioned for several intervals: {requests:?}");

    // Confirming 400 terminations: deletes, a shared sweep per interval, and one single read for
    // each pod the sweep no longer shows.
    let before = emulator.stats().requests_by_route;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let terminations = rp_ids.iter().map(|id| runpod.terminate_and_confirm(id, deadline));
    let pi_terminations = pi_ids.iter().map(|id| pi.terminate_and_confirm(id, deadline));
    let (rp_done, pi_done) =
        tokio::join!(futures::future::join_all(terminations), futures::future::join_all(pi_terminations));
    assert!(rp_done.iter().chain(&pi_done).all(Result::is_ok));
    let requests = since(&emulator, &before);
    println!("{PODS} + {PODS} terminations confirmed in {:?}: {requests:?}", started.elapsed());
    assert_eq!(count(&requests, "DELETE /v2/pods/{id}"), PODS as u64);
    assert_eq!(count(&requests, "DELETE /api/v1/pods/{id}"), PODS as u64);
    assert!(count(&requests, RUNPOD_SINGLE) <= PODS as u64, "{requests:?}");
    assert!(count(&requests, PI_SINGLE) <= PODS as u64, "{requests:?}");
    assert_eq!(emulator.live_pods().len(), 0);

    // Nobody waits any more: the watchers stop.
    let before = emulator.stats().requests_by_route;
    tokio::time::sleep(interval * 6).await;
    assert_eq!(since(&emulator, &before), BTreeMap::new(), "no request once nobody waits");
}

/// A provisioner that reads states the way the trait's default does: one request per pod and
/// poll interval (how every wait worked before the watcher).
#[derive(Debug)]
struct PerPodPolling(RunPod);

#[async_trait]
impl Provisioner for PerPodPolling {
    fn provider(&self) -> Provider {
        self.0.provider()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn offers(&self, query: &OfferQuery) -> gpucloud::Result<Vec<Offer>> {
        self.0.offers(query).await
    }
    async fn create(&self, spec: &LaunchSpec) -> gpucloud::Result<Pod> {
        self.0.create(spec).await
    }
    async fn get(&self, id: &PodId) -> gpucloud::Result<Pod> {
        self.0.get(id).await
    }
    fn list(&self) -> BoxStream<'_, gpucloud::Result<Pod>> {
        self.0.list()
    }
    async fn terminate(&self, id: &PodId) -> gpucloud::Result<()> {
        self.0.terminate(id).await
    }
    async fn list_volumes(&self) -> gpucloud::Result<Vec<Volume>> {
        self.0.list_volumes().await
    }
    async fn create_volume(&self, spec: &VolumeSpec) -> gpucloud::Result<Volume> {
        self.0.create_volume(spec).await
    }
    async fn delete_volume(&self, id: &str) -> gpucloud::Result<()> {
        self.0.delete_volume(id).await
    }
    fn poll_interval(&self) -> Duration {
        self.0.poll_interval()
    }
    fn readiness(&self) -> Readiness {
        self.0.readiness()
    }
}

/// The figure for BENCHMARKS.md: requests per waiting pod per minute, per-pod polling against
/// the shared sweep, side by side on the same emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_waiting_pod_per_minute_before_and_after() {
    const PODS: usize = 50;
    let interval = Duration::from_millis(200);
    let wait = Duration::from_secs(3);
    let emulator = common::emulator(Duration::from_secs(3600), FaultConfig::none()).await; // never ready
    let mut rates = Vec::new();
    for coalesced in [false, true] {
        let client = common::runpod(&emulator).with_poll_interval(interval);
        let provisioner: Arc<dyn Provisioner> =
            if coalesced { Arc::new(client) } else { Arc::new(PerPodPolling(client)) };
        let ids = create_pods(&provisioner, PODS).await;
        let before = emulator.stats().requests;
        let deadline = Instant::now() + wait;
        let waits = ids.iter().map(|id| provisioner.wait_until_ready(id, deadline));
        let results = futures::future::join_all(waits).await;
        assert!(results.iter().all(|r| matches!(r, Err(Error::Timeout { .. }))));
        let requests = emulator.stats().requests - before;
        let per_pod_minute = requests as f64 / PODS as f64 / (wait.as_secs_f64() / 60.0);
        println!(
            "{}: {PODS} pods waited on for {wait:?} at a {interval:?} interval: {requests} requests, {per_pod_minute:.1} per waiting pod per minute",
            if coalesced { "shared sweep" } else { "per-pod polling" }
        );
        rates.push(per_pod_minute);
        for id in &ids {
            provisioner.terminate(id).await.unwrap();
        }
    }
    // Per-pod polling costs a request per pod per interval; the sweep one per interval in all.
    assert!(rates[1] * (PODS as f64) / 2.0 < rates[0], "{rates:?}");
}

fn runpod_at(server: &MockServer, policy: RetryPolicy) -> RunPod {
    RunPod::new(SecretString::from("key"), Some(&server.uri()))
        .unwrap()
        .with_retry_policy(policy)
        .with_poll_interval(Duration::from_millis(100))
        .with_readiness(Readiness::Status)
}

#[tokio::test]
async fn a_failed_sweep_is_retried_per_policy_and_reported_to_every_waiter() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"title": "Service Unavailable", "status": 503, "detail": "upstream down"})),
        )
        .mount(&server)
        .await;
    let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::fast() };
    let runpod = runpod_at(&server, policy);
    let ids: Vec<PodId> = (0..5).map(|i| PodId::new(Provider::RunPod, format!("pod{i}"))).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let results = futures::future::join_all(ids.iter().map(|id| runpod.wait_until_ready(id, deadline))).await;
    for result in &results {
        assert!(matches!(result, Err(Error::Api { status: 503, .. })), "{result:?}");
    }
    // One sweep for all five, sent three times (the policy's attempts), then nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

fn pi_pod(id: &str) -> serde_json::Value {
    json!({"id": id, "userId": "u", "name": format!("{id}-gc0123456789"), "providerType": "runpod", "status": "ACTIVE",
           "gpuName": "H100_80GB", "gpuCount": 1, "socket": "PCIe", "priceHr": 2.0, "sshConnection": "root@1.2.3.4 -p 22"})
}

#[tokio::test]
async fn a_server_that_refuses_batched_status_reads_gets_single_reads() {
    let server = MockServer::start().await;
    // What Prism 5.14.2 does with a one-valued `pod_ids`: a 422.
    let refusal = json!({"errors": [{"param": "pod_ids", "details": "must be array"}]});
    Mock::given(method("GET"))
        .and(path("/api/v1/pods/status"))
        .respond_with(ResponseTemplate::new(422).set_body_json(refusal))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/api/v1/pods/pod[0-9]$"))
        .respond_with(|request: &wiremock::Request| {
            let id = request.url.path().rsplit('/').next().unwrap().to_string();
            ResponseTemplate::new(200).set_body_json(pi_pod(&id))
        })
        .mount(&server)
        .await;
    let pi = PrimeIntellect::new(SecretString::from("key"), Some(&server.uri()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast())
        .with_poll_interval(Duration::from_millis(100))
        .with_readiness(Readiness::Status);
    let ids: Vec<PodId> = (0..3).map(|i| PodId::new(Provider::PrimeIntellect, format!("pod{i}"))).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..2 {
        let results = futures::future::join_all(ids.iter().map(|id| pi.wait_until_ready(id, deadline))).await;
        for (result, id) in results.iter().zip(&ids) {
            assert_eq!(&result.as_ref().expect("ready from a single read").id, id);
        }
    }
    // `expect(1)`: the refused batch was not tried again.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_leaked_without_being_dropped_stop_being_swept() {
    let interval = Duration::from_millis(50);
    let emulator = common::emulator(Duration::from_secs(3600), FaultConfig::none()).await; // never ready
    let runpod: Arc<dyn Provisioner> = Arc::new(common::runpod(&emulator).with_poll_interval(interval));
    let ids = create_pods(&runpod, 2).await;
    let deadline = Instant::now() + Duration::from_secs(3600);
    // Each wait registers on its first poll; then the futures are leaked, as a crash in the
    // middle of a wait would leave them: their registrations are never dropped.
    for id in &ids {
        let mut wait = Box::pin(runpod.wait_until_ready(id, deadline));
        assert!(futures::poll!(&mut wait).is_pending());
        std::mem::forget(wait);
    }
    // Within a few sweeps (however slowly a loaded machine runs them), requests stop for good.
    let mut quiet = false;
    for _ in 0..25 {
        let before = emulator.stats().requests;
        tokio::time::sleep(interval * 8).await;
        if emulator.stats().requests == before {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "abandoned waits are no longer swept");
    // A live wait afterwards is served as usual.
    let pod = runpod.observe(&ids[0]).await.unwrap().expect("the pod exists");
    assert_eq!(pod.id, ids[0]);
}
