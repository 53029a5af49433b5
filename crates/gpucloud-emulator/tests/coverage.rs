//! Route coverage, measured: every operation of the vendored documents (`documents/*.json`) is
//! sent to an emulator, and each is counted answered (any status but `501`) or not emulated
//! (`501` in the provider's error shape, never a bare `404`). Prints the figures per API and per
//! tag (`cargo test -p gpucloud-emulator --test coverage -- --nocapture`); README's emulator
//! section records them.
//!
//! It fails when a RunPod v2 operation, or a PrimeIntellect operation of the
//! compute surface (availability, pods, disks, SSH keys, user, teams, secrets, templates), is not
//! answered; when an operation of another product answers anything but the `501`; and when an
//! answer breaks the document's response schema for its status (`check_responses`).

mod common;

use gpucloud_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(method, path template, tag)` of every documented operation.
fn operations(document: &str) -> Vec<(String, String, String)> {
    let doc: Value = serde_json::from_str(document).expect("the vendored document is JSON");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let tag = op.pointer("/tags/0").and_then(Value::as_str).unwrap_or("").to_string();
                out.push((method.to_uppercase(), path.clone(), tag));
            }
        }
    }
    out
}

/// The path with every parameter filled: ids the emulator does not know, so reads answer the
/// provider's `404` and writes their validation or not-found answers.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|part| if part.starts_with('{') { "unknown-id" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_operation_is_answered_or_said_not_emulated() {
    common::bounded("every_documented_operation_is_answered_or_said_not_emulated", Duration::from_secs(60), async {
        let config = EmulatorConfig { check_responses: true, ..EmulatorConfig::default() };
        let emulator = Emulator::start(config).await.unwrap();
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let mut table: BTreeMap<(&str, String), (u32, u32)> = BTreeMap::new();
        let mut failures = Vec::new();
        let documents = [
            ("RunPod v2", include_str!("../documents/runpod-v2.json")),
            ("PrimeIntellect", include_str!("../documents/primeintellect.json")),
        ];
        let compute = ["Availability", "Pods", "Disks", "SSH Keys", "user", "Secrets", "Template"];
        for (api, document) in documents {
            for (method, template, tag) in operations(document) {
                // Writes carry an empty object: the answer is whatever the operation says of it.
                let body = (method != "GET" && method != "DELETE").then(|| json!({}));
                let (status, headers, answer) =
                    common::send(&client, &base, &key, &method, &concrete(&template), body).await;
                let entry = table.entry((api, tag.clone())).or_default();
                entry.1 += 1;
                let in_scope = api == "RunPod v2" || compute.contains(&tag.as_str());
                if status == 501 {
                    let shaped = if api == "RunPod v2" {
                        headers.get("content-type").is_some_and(|t| t == "application/problem+json")
                            && answer["status"] == 501
                            && answer["detail"].as_str().is_some_and(|d| d.contains("not emulated"))
                    } else {
                        answer["detail"].as_str().is_some_and(|d| d.contains("not emulated"))
                    };
                    if !shaped {
                        failures.push(format!("{method} {template}: 501 not in the provider's shape: {answer}"));
                    }
                    if in_scope {
                        failures.push(format!("{method} {template} ({tag}) is in scope but not emulated"));
                    }
                } else {
                    entry.0 += 1;
                    if !in_scope {
                        failures.push(format!(
                            "{method} {template} ({tag}): {status}, expected the 501 of a product not emulated"
                        ));
                    }
                }
            }
        }
        // Teams members: absent from the vendored document, linked from the guide, used by `prime`.
        let (status, ..) =
            common::send(&client, &base, &key, "GET", "/api/v1/teams/clteamemulator000000000001/members", None).await;
        assert_eq!(status, 200, "GET /api/v1/teams/{{id}}/members");
        println!("{:<16} {:<16} {:>8}", "API", "tag", "answered");
        let mut totals: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for ((api, tag), (answered, all)) in &table {
            println!("{api:<16} {tag:<16} {answered:>4}/{all:<3}");
            let total = totals.entry(api).or_default();
            total.0 += answered;
            total.1 += all;
        }
        for (api, (answered, all)) in &totals {
            println!("coverage: {api} {answered}/{all} documented operations answered");
            // `gpucloud emulator --help` states the same figures.
            let stated = format!("{api} {answered} of {all}").replace("RunPod v2 ", "RunPod v2 ");
            assert!(
                gpucloud_emulator::COVERAGE.replace('\n', " ").contains(&stated),
                "COVERAGE does not say {stated:?}"
            );
        }
        let checks = emulator.response_checks();
        println!("responses checked against their documented schemas: {}", checks.checked.values().sum::<u64>());
        failures.extend(checks.violations);
        assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
        // The figures README records.
        assert_eq!(totals["RunPod v2"], (60, 60), "RunPod v2: every operation, the six cluster operations included");
        let compute_ops: u32 = table
            .iter()
            .filter(|((api, tag), _)| *api == "PrimeIntellect" && compute.contains(&tag.as_str()))
            .map(|(_, (_, all))| all)
            .sum();
        assert_eq!(compute_ops, 33, "PrimeIntellect's compute surface in the vendored document");
        assert_eq!(totals["PrimeIntellect"], (33, 68), "PrimeIntellect: the whole compute surface, nothing else");
    })
    .await;
}

#[tokio::test]
async fn a_wrong_method_or_path_answers_in_the_providers_shape() {
    common::bounded("a_wrong_method_or_path_answers_in_the_providers_shape", Duration::from_secs(30), async {
        let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        // PUT is documented for no pod path: 405 with a problem document, not an empty body.
        let (status, headers, body) = common::send(&client, &base, &key, "PUT", "/v2/pods/abc", Some(json!({}))).await;
        assert_eq!((status, body["status"].as_u64()), (405, Some(405)), "{body}");
        assert_eq!(headers["content-type"], "application/problem+json");
        let (status, _, body) = common::send(&client, &base, &key, "PUT", "/api/v1/disks/abc", Some(json!({}))).await;
        assert_eq!((status, body["detail"].as_str()), (405, Some("Method Not Allowed")), "FastAPI's 405");
        // A path no document has stays a 404.
        let (status, _, body) = common::send(&client, &base, &key, "GET", "/v2/nothing", None).await;
        assert_eq!((status, body["status"].as_u64()), (404, Some(404)), "{body}");
        // An operation of a product not emulated says so.
        let (status, _, body) = common::send(&client, &base, &key, "GET", "/api/v1/sandbox", None).await;
        assert_eq!(status, 501, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("GET /api/v1/sandbox (Sandbox)"), "{body}");
    })
    .await;
}
