//! The legacy v1 client speaks the v1 wire format (kept for the original brief's API).

use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn create_pod_sends_gpu_type_preferences_and_list_decodes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pods"))
        .and(header("authorization", "Bearer v1-key"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "p1", "desiredStatus": "RUNNING"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/pods"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "p1", "desiredStatus": "RUNNING", "env": {"A": "1"}, "createdAt": "2024-07-12 19:14:40.144 +0000 UTC",
             "someFutureField": true}
        ])))
        .mount(&server)
        .await;
    let client = runpod_v1_api::Client::with_api_key(&SecretString::from("v1-key"), Some(&server.uri())).unwrap();
    let body: runpod_v1_api::types::PodCreateInput = serde_json::from_value(json!({
        "name": "x", "imageName": "runpod/pytorch:2",
        "gpuTypeIds": ["NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB PCIe"], "cloudType": "SECURE",
        "interruptible": false, "ports": ["22/tcp"], "env": {"A": "1"}
    }))
    .unwrap();
    let pod = client.create_pod().body(body).send().await.unwrap();
    assert_eq!(pod.id.as_deref(), Some("p1"));
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(sent["gpuTypeIds"], json!(["NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB PCIe"]));
    let pods = client.list_pods().send().await.unwrap();
    assert_eq!(pods.len(), 1);
}
