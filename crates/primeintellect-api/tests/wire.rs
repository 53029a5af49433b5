//! The generated PrimeIntellect client against a local mock: request shapes, real response
//! bodies (PrimeIntellect's own CLI fixtures), typed errors, and the drift the live API shows.

use primeintellect_api::{Client, ClientInfo, Error, types};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "pi-test-key-0123456789";

async fn client(server: &MockServer) -> Client {
    Client::with_api_key(&SecretString::from(KEY), Some(&server.uri())).unwrap()
}

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn availability_query_repeats_regions_and_decodes_the_real_fixture() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/availability/gpus"))
        .and(query_param("gpu_type", "H100_80GB"))
        .and(query_param("gpu_count", "1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("availability_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let offers = client(&server)
        .await
        .get_gpu_availability()
        .gpu_type("H100_80GB".to_string())
        .gpu_count(1)
        .regions(vec!["united_states".to_string().into(), "canada".to_string().into()])
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!offers.items.is_empty());
    assert!(offers.total_count as usize >= offers.items.len());
    let first = &offers.items[0];
    assert_eq!(first.cloud_id, "NVIDIA A100 80GB PCIe");

    let requests = server.received_requests().await.unwrap();
    let request: &Request = &requests[0];
    let query = request.url.query().unwrap();
    assert!(query.contains("regions=united_states&regions=canada"), "{query}");
    assert!(request.headers.get("api-version").is_none(), "progenitor's api-version header is removed");
    let agent = request.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(agent.starts_with("primeintellect-api/"), "{agent}");
}

#[tokio::test]
async fn disk_availability_and_gpu_summary_fixtures_decode() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/availability/disks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("availability_disks.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/availability/gpu-summary"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("availability_summary.json")))
        .mount(&server)
        .await;
    let client = client(&server).await;
    let disks = client.get_disk_availability().send().await.unwrap().into_inner();
    assert!(!disks.items.is_empty());
    assert!(disks.items.iter().any(|d| d.is_multinode == Some(true)));
    let summary = client.get_gpu_summary().send().await.unwrap().into_inner();
    assert!(summary.contains_key("A100_80GB"));
}

#[tokio::test]
async fn create_pod_sends_the_documented_body() {
    let server = MockServer::start().await;
    let body = json!({
        "pod": {"name": "train", "cloudId": "NVIDIA A100 80GB PCIe", "gpuType": "A100_80GB", "socket": "PCIe",
                "gpuCount": 1, "image": "ubuntu_22_cuda_12", "dataCenterId": "US-KS-2", "country": "US",
                "security": "secure_cloud", "maxPrice": 2.5},
        "provider": {"type": "runpod"}
    });
    Mock::given(method("POST"))
        .and(path("/api/v1/pods/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pod_json("pod-1", "PROVISIONING")))
        .expect(1)
        .mount(&server)
        .await;
    let request: types::BodyCreatePodApiV1PodsPost = serde_json::from_value(body.clone()).unwrap();
    let pod = client(&server).await.create_pod().body(request).send().await.unwrap().into_inner();
    assert_eq!(pod.id.as_deref(), Some("pod-1"));
    // Everything we set is on the wire as named in the document, and no field is sent as null
    // (typify adds the schema's defaults, e.g. autoRestart: false, which is harmless).
    let sent: serde_json::Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    for (key, value) in body["pod"].as_object().unwrap() {
        assert_eq!(&sent["pod"][key], value, "pod.{key}");
    }
    assert_eq!(sent["provider"], body["provider"]);
    assert!(!sent.to_string().contains("null"), "{sent}");
}

#[tokio::test]
async fn validation_error_comes_back_typed() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/pods/nope"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "errors": [{"param": "pod_id", "details": "unknown pod"}]
        })))
        .mount(&server)
        .await;
    let err = client(&server).await.delete_pod().pod_id("nope").send().await.unwrap_err();
    match err {
        Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 422);
            assert_eq!(response.errors[0].details.as_deref(), Some("unknown pod"));
        }
        other => panic!("expected a typed 422, got {other:?}"),
    }
}

#[tokio::test]
async fn unauthorized_is_reported_with_its_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/pods/"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Authorization failed"))
        .mount(&server)
        .await;
    let err = client(&server).await.list_pods().send().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
}

fn pod_json(id: &str, status: &str) -> serde_json::Value {
    json!({
        "id": id, "userId": "u1", "name": "train", "providerType": "runpod", "status": status,
        "gpuName": "A100_80GB", "gpuCount": 1, "socket": "PCIe", "priceHr": 1.2,
        "createdAt": "2025-11-07T21:07:15.183000", "sshConnection": null, "ip": null
    })
}

#[tokio::test]
async fn real_world_drift_decodes() {
    let server = MockServer::start().await;
    let mut ssh_string = pod_json("a", "ACTIVE");
    ssh_string["sshConnection"] = json!("root@1.2.3.4 -p 22");
    ssh_string["ip"] = json!("1.2.3.4");
    let mut ssh_list = pod_json("b", "ACTIVE");
    ssh_list["sshConnection"] = json!(["root@1.2.3.4 -p 22", null]);
    ssh_list["ip"] = json!([null]);
    // A status and GPU the document does not list, and a field it does not know.
    let mut future = pod_json("c", "HIBERNATING");
    future["gpuName"] = json!("GB400");
    future["someNewField"] = json!({"nested": true});
    Mock::given(method("GET"))
        .and(path("/api/v1/pods/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalCount": 3, "offset": 0, "limit": 100, "status": "ok",
            "data": [ssh_string, ssh_list, future]
        })))
        .mount(&server)
        .await;
    let page = client(&server).await.list_pods().send().await.unwrap().into_inner();
    assert_eq!(page.total_count, 3, "camelCase totalCount is accepted");
    assert_eq!(page.data.len(), 3);
    assert_eq!(page.data[0].created_at.as_deref(), Some("2025-11-07T21:07:15.183000"));
    assert_eq!(page.data[2].status.as_ref().map(|s| s.0.as_str()), Some("HIBERNATING"));
    assert_eq!(page.data[2].gpu_name.0, "GB400");
    assert!(page.data[1].ssh_connection.is_some());
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let client = Client::with_api_key(&SecretString::from(KEY), None).unwrap();
    let debug = format!("{client:?} {:?}", SecretString::from(KEY));
    assert!(!debug.contains(KEY), "{debug}");
}

#[test]
fn base_urls_are_checked() {
    let key = SecretString::from(KEY);
    for bad in ["ftp://x", "not a url", "https://api.example/?q=1"] {
        let err = Client::with_api_key(&key, Some(bad)).unwrap_err().to_string();
        assert!(err.contains("base URL") && !err.contains(KEY), "{err}");
    }
    assert!(Client::with_api_key(&SecretString::from("bad\nkey"), None).is_err());
    let client = Client::with_api_key(&key, Some("http://127.0.0.1:9/")).unwrap();
    assert_eq!(client.baseurl(), "http://127.0.0.1:9");
}
