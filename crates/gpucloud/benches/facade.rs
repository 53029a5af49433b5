//! Benchmarks against the emulator on loopback, each compared side by side in one run.
//! `cargo bench -p gpucloud --bench facade`; figures and goals in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::TryStreamExt;
use gpucloud::{Fleet, OfferQuery, Pagination, PrimeIntellect, Provisioner, RunPod, SecretString};
use gpucloud_emulator::{Api, Emulator, EmulatorConfig, FaultConfig};
use std::hint::black_box;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn emulator(rt: &tokio::runtime::Runtime, latency: Duration) -> Emulator {
    let faults = FaultConfig { latency, ..FaultConfig::none() };
    rt.block_on(Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, faults, ..EmulatorConfig::default() }))
        .unwrap()
}

fn pi(emulator: &Emulator) -> PrimeIntellect {
    PrimeIntellect::new(SecretString::from(emulator.api_key().to_string()), Some(&emulator.base_url())).unwrap()
}

/// Facade `get` vs a bare reqwest GET + serde_json decode of the same body.
fn per_call_overhead(c: &mut Criterion) {
    let rt = runtime();
    let emulator = emulator(&rt, Duration::ZERO);
    emulator.seed_pods(Api::PrimeIntellect, 1);
    let pi = pi(&emulator);
    let id = emulator.live_pods()[0].id.clone();
    let pod_id = gpucloud::PodId::new(gpucloud::Provider::PrimeIntellect, id.clone());
    // reqwest's defaults, with the SDK's TLS provider (reqwest is built without one).
    let bare = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let url = format!("{}/api/v1/pods/{id}", emulator.base_url());
    let auth = format!("Bearer {}", emulator.api_key());
    let mut group = c.benchmark_group("per_call_get");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("bare_reqwest_serde_json", |b| {
        b.to_async(&rt).iter(|| async {
            let body = bare.get(&url).header("authorization", &auth).send().await.unwrap().bytes().await.unwrap();
            black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        })
    });
    // The same bare request on a client with the SDK's settings (timeouts, default headers).
    let configured = primeintellect_api::authenticated_http_client(
        &SecretString::from(emulator.api_key().to_string()),
        &primeintellect_api::ClientOptions::default(),
    )
    .unwrap()
    .build()
    .unwrap();
    group.bench_function("bare_reqwest_sdk_settings", |b| {
        b.to_async(&rt).iter(|| async {
            let body = configured.get(&url).send().await.unwrap().bytes().await.unwrap();
            black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        })
    });
    // The generated client alone, to tell progenitor's cost from the facade's.
    group.bench_function("generated_client", |b| {
        b.to_async(&rt).iter(|| async { black_box(pi.raw().get_pod().pod_id(&id).send().await.unwrap()) })
    });
    group
        .bench_function("facade_get", |b| b.to_async(&rt).iter(|| async { black_box(pi.get(&pod_id).await.unwrap()) }));
    group.finish();
}

/// 10,000 PrimeIntellect pods in pages of 100 with 5 ms server latency: sequential vs prefetch.
fn list_10k_pods(c: &mut Criterion) {
    let rt = runtime();
    let emulator = emulator(&rt, Duration::from_millis(5));
    emulator.seed_pods(Api::PrimeIntellect, 10_000);
    let mut group = c.benchmark_group("list_10k_pods_5ms");
    group.sample_size(10);
    for prefetch in [1usize, 8] {
        let client = pi(&emulator).with_pagination(Pagination { page_size: 100, max_pages: 1_000, prefetch });
        group.bench_with_input(BenchmarkId::new("prefetch", prefetch), &client, |b, client| {
            b.to_async(&rt).iter(|| async {
                let pods: Vec<_> = client.list().try_collect().await.unwrap();
                assert_eq!(pods.len(), 10_000);
                black_box(pods)
            })
        });
    }
    group.finish();
}

/// 10,000 RunPod pods by cursor with 5 ms server latency: pages of 1,000 (the document's
/// maximum `limit`, the default) vs pages of 100, beside PrimeIntellect's 10,000 in pages of 100
/// with 8 prefetched. Cursor pages are sequential by nature (each needs the previous cursor).
fn list_10k_runpod_pods(c: &mut Criterion) {
    let rt = runtime();
    let emulator = emulator(&rt, Duration::from_millis(5));
    emulator.seed_pods(Api::RunPod, 10_000);
    emulator.seed_pods(Api::PrimeIntellect, 10_000);
    let mut group = c.benchmark_group("list_10k_pods_by_cursor_5ms");
    group.sample_size(10);
    for limit in [1000u64, 100] {
        let client = RunPod::new(SecretString::from(emulator.api_key().to_string()), Some(&emulator.base_url()))
            .unwrap()
            .with_pagination(Pagination { page_size: limit, ..Pagination::runpod() });
        group.bench_with_input(BenchmarkId::new("runpod_limit", limit), &client, |b, client| {
            b.to_async(&rt).iter(|| async {
                let pods: Vec<_> = client.list().try_collect().await.unwrap();
                assert_eq!(pods.len(), 10_000);
                black_box(pods)
            })
        });
    }
    let client = pi(&emulator).with_pagination(Pagination { page_size: 100, max_pages: 1_000, prefetch: 8 });
    group.bench_function("primeintellect_100_prefetch_8", |b| {
        b.to_async(&rt).iter(|| async {
            let pods: Vec<_> = client.list().try_collect().await.unwrap();
            assert_eq!(pods.len(), 10_000);
            black_box(pods)
        })
    });
    group.finish();
    let requests = emulator.stats().requests_by_route.get("GET /v2/pods").copied().unwrap_or(0);
    println!("RunPod list requests over the whole group: {requests}");
}

/// Fleet::offers over both providers (100 ms latency each) vs one provider alone.
fn fleet_offers(c: &mut Criterion) {
    let rt = runtime();
    let emulator = emulator(&rt, Duration::from_millis(100));
    let key = SecretString::from(emulator.api_key().to_string());
    let one = Fleet::new().with(pi(&emulator));
    let both = Fleet::new().with(pi(&emulator)).with(RunPod::new(key, Some(&emulator.base_url())).unwrap());
    let query = OfferQuery::gpu("H100_80GB", 1);
    let mut group = c.benchmark_group("fleet_offers_100ms");
    group.sample_size(10);
    group.bench_function("one_provider", |b| b.to_async(&rt).iter(|| async { black_box(one.offers(&query).await) }));
    group.bench_function("both_providers", |b| b.to_async(&rt).iter(|| async { black_box(both.offers(&query).await) }));
    group.finish();
}

/// A 10,000-offer availability response decoded into the generated types vs serde_json::Value.
fn decode_10k_offers(c: &mut Criterion) {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../primeintellect-api/tests/fixtures/availability_response.json"))
            .unwrap();
    let items = fixture["items"].as_array().unwrap();
    let many: Vec<&serde_json::Value> = items.iter().cycle().take(10_000).collect();
    let body = serde_json::to_vec(&serde_json::json!({"items": many, "totalCount": 10_000})).unwrap();
    let mut group = c.benchmark_group("decode_10k_offers");
    group.sample_size(20);
    group.bench_function("serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap()))
    });
    group.bench_function("generated_types", |b| {
        b.iter(|| black_box(serde_json::from_slice::<primeintellect_api::types::AvailabilityResponse>(&body).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, per_call_overhead, list_10k_pods, list_10k_runpod_pods, fleet_offers, decode_10k_offers);
criterion_main!(benches);
