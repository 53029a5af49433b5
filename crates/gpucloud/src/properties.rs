//! Property tests: hostile responses never panic, parsers never panic, pagination always stops
//! with every item or an error. Case counts are bounded for CI (`PROPTEST_CASES` raises them).

use crate::Provider;
use crate::model::{PodId, SshEndpoint};
use crate::model::{gpu, time};
use crate::providers::{primeintellect, runpod};
use crate::transport::paginate::{Page, PageRequest, Pagination, items, pages};
use futures::TryStreamExt;
use proptest::prelude::*;
use serde_json::{Value, json};

fn pi_pod() -> Value {
    json!({"id": "p1", "userId": "u", "name": "n", "providerType": "runpod", "status": "ACTIVE", "gpuName": "H100_80GB",
           "gpuCount": 1, "socket": "PCIe", "priceHr": 1.5, "createdAt": "2025-11-07T21:07:15.183000",
           "sshConnection": ["root@1.2.3.4 -p 22", null], "ip": "1.2.3.4"})
}

fn pi_offer() -> Value {
    json!({"cloudId": "c", "gpuType": "H100_80GB", "socket": "SXM5", "provider": "hyperstack", "gpuCount": 1, "gpuMemory": 80,
           "stockStatus": "Low", "security": "secure_cloud", "images": ["ubuntu_22_cuda_12"],
           "disk": {"minCount": 50, "defaultCount": 100, "maxCount": 1000, "pricePerUnit": 0.001, "step": 10, "defaultIncludedInPrice": true},
           "prices": {"onDemand": 2.0, "isVariable": false, "currency": "USD"}})
}

fn runpod_pod() -> Value {
    json!({"id": "x", "name": "n", "image": "i", "args": "", "disk": 50, "ports": [], "env": {}, "registry": null, "status": "RUNNING",
           "actions": [], "mounts": {}, "gpu": {"id": "NVIDIA H100 80GB HBM3", "count": 1}, "cloud": "SECURE", "dataCenterId": null,
           "cudaVersion": null, "ssh": {"proxy": null, "direct": {"host": "h", "port": 22, "username": "root", "command": "ssh"}},
           "template": null, "cost": 2.99, "locked": false, "globalNetworking": {"enabled": false}, "runtime": null,
           "createdAt": "2026-06-01T12:00:00Z", "startedAt": null})
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces, removes or adds fields of `base` as told by `edits`.
fn mutate(base: &Value, edits: &[(usize, u8, Value)]) -> Value {
    let mut value = base.clone();
    let Some(object) = value.as_object_mut() else { return value };
    for (index, op, new) in edits {
        let keys: Vec<String> = object.keys().cloned().collect();
        let key = keys.get(index % keys.len().max(1)).cloned().unwrap_or_default();
        match op % 3 {
            0 => {
                object.insert(key, new.clone());
            }
            1 => {
                object.remove(&key);
            }
            _ => {
                object.insert(format!("extra{index}"), new.clone());
            }
        }
    }
    value
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, Value)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any_json()), 0..5)
}

/// Decoding any body into the generated types and mapping it never panics.
fn decode_all(bytes: &[u8]) {
    if let Ok(pod) = serde_json::from_slice::<primeintellect_api::types::ApiPodConfig>(bytes) {
        let _ = primeintellect::to_pod(pod);
    }
    if let Ok(offer) = serde_json::from_slice::<primeintellect_api::types::GpuAvailability>(bytes) {
        let _ = primeintellect::to_offer(&offer);
    }
    if let Ok(pod) = serde_json::from_slice::<runpod_api::types::Pod>(bytes) {
        let _ = runpod::to_pod(pod);
    }
    let _ = serde_json::from_slice::<runpod_api::types::ListGpuTypesResponse>(bytes);
    let _ = serde_json::from_slice::<primeintellect_api::types::AvailabilityResponse>(bytes);
}

#[test]
fn every_truncation_of_real_bodies_is_an_error_not_a_panic() {
    let fixture = include_str!("../../primeintellect-api/tests/fixtures/availability_response.json");
    for body in [fixture.to_string(), pi_pod().to_string(), runpod_pod().to_string(), pi_offer().to_string()] {
        // Every cut of the small bodies; every 7th of the 18 KB fixture (debug builds are slow).
        let step = if body.len() > 4096 { 7 } else { 1 };
        for cut in (0..body.len()).step_by(step) {
            if body.is_char_boundary(cut) {
                decode_all(&body.as_bytes()[..cut]);
            }
        }
    }
    // The untouched bodies do decode and map.
    let pod: primeintellect_api::types::ApiPodConfig = serde_json::from_value(pi_pod()).unwrap();
    assert!(primeintellect::to_pod(pod).unwrap().ssh.is_some());
    let offer: primeintellect_api::types::GpuAvailability = serde_json::from_value(pi_offer()).unwrap();
    assert!(primeintellect::to_offer(&offer).is_some());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_responses_never_panic(edits in edits(), which in 0..3u8) {
        let base = match which { 0 => pi_pod(), 1 => pi_offer(), _ => runpod_pod() };
        decode_all(mutate(&base, &edits).to_string().as_bytes());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_json_never_panics(value in any_json()) {
        decode_all(value.to_string().as_bytes());
    }

    #[test]
    fn unknown_statuses_and_gpus_are_kept(status in "[A-Z_]{1,12}", gpu_name in "[A-Za-z0-9][A-Za-z0-9_ ]{0,19}") {
        let mut raw = pi_pod();
        raw["status"] = json!(status);
        raw["gpuName"] = json!(gpu_name);
        let pod: primeintellect_api::types::ApiPodConfig = serde_json::from_value(raw).unwrap();
        let mapped = primeintellect::to_pod(pod).unwrap();
        prop_assert_eq!(mapped.provider_status, status);
        prop_assert!(!mapped.gpu_type.is_empty());
    }

    #[test]
    fn pod_ids_never_panic_and_round_trip(text in ".{0,40}", id in "[a-z0-9]{1,20}") {
        let _ = text.parse::<PodId>();
        for provider in Provider::ALL {
            let pod_id = PodId::new(provider, id.clone());
            prop_assert_eq!(pod_id.to_string().parse::<PodId>().unwrap(), pod_id);
        }
    }

    #[test]
    fn gpu_names_and_other_parsers_never_panic(text in ".{0,40}") {
        let _ = gpu::lookup(&text);
        let _ = gpu::canonical_name(&text);
        let _ = SshEndpoint::parse(&text);
        let _ = time::parse_timestamp(&text);
    }

    #[test]
    fn canonical_names_are_fixed_points(index in 0..gpu::MODELS.len()) {
        let model = &gpu::MODELS[index];
        prop_assert_eq!(gpu::canonical_name(model.name), model.name);
        for (id, _) in model.runpod_ids {
            prop_assert_eq!(gpu::canonical_name(id), model.name);
            prop_assert_eq!(gpu::canonical_name(&id.replacen(' ', "  ", 1)), model.name);
        }
    }

    #[test]
    fn pagination_returns_everything_or_an_error(
        total in 0u64..500, size in 1u64..60, prefetch in 1usize..5, honest in any::<bool>(), max_pages in 1u64..40,
    ) {
        let settings = Pagination { page_size: size, max_pages, prefetch };
        let fetch = move |req: PageRequest| {
            let items: Vec<u64> = (req.offset()..(req.offset() + req.size).min(total)).collect();
            futures::future::ready(Ok(Page::new(items, honest.then_some(total))))
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let result: Result<Vec<u64>, crate::Error> = runtime.block_on(items(pages(Provider::PrimeIntellect, "list", settings, fetch)).try_collect());
        // Pages needed: ceil(total / size), plus one empty page when the total is unknown and
        // the last page is full.
        let needed = total.div_ceil(size) + u64::from(!honest && total % size == 0 && total > 0) + u64::from(total == 0);
        match result {
            Ok(all) => {
                prop_assert_eq!(all, (0..total).collect::<Vec<_>>());
                prop_assert!(needed <= max_pages);
            }
            Err(crate::Error::Pagination { pages, .. }) => prop_assert!(needed > max_pages && pages == max_pages),
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}
