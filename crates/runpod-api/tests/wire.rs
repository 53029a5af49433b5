//! The generated RunPod v2 client: every response example in the document decodes into its
//! generated type, requests have the documented shape, and problem+json errors come back typed
//! with their rate-limit headers.

use runpod_api::{Client, Error, types};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "rp-test-key-0123456789";

macro_rules! decoders {
    ($($name:ident),* $(,)?) => {
        /// Decodes `value` as the generated type named after component schema `name`.
        fn decode(name: &str, value: &Value) -> Option<Result<(), serde_json::Error>> {
            match name {
                $(stringify!($name) => Some(serde_json::from_value::<types::$name>(value.clone()).map(|_| ())),)*
                _ => None,
            }
        }
    };
}

decoders!(
    Cluster,
    CpuType,
    DataCenter,
    Build,
    EcrDelegation,
    Endpoint,
    ErrorResponse,
    GpuType,
    ListBillingResponse,
    ListClusterBillingResponse,
    ListClustersResponse,
    ListCpuTypesResponse,
    ListDataCentersResponse,
    ListDelegationsResponse,
    ListEndpointBillingResponse,
    ListEndpointBuildsResponse,
    ListEndpointReleasesResponse,
    ListEndpointWorkersResponse,
    ListEndpointsResponse,
    ListGpuTypesResponse,
    ListNetworkVolumeBillingResponse,
    ListNetworkVolumesResponse,
    ListPodBillingResponse,
    ListPodsResponse,
    ListRegistriesResponse,
    ListSecretsResponse,
    ListServerlessBillingResponse,
    ListTemplatesResponse,
    NetworkVolume,
    Pod,
    Registry,
    Secret,
    SshKeys,
    Template,
    TemplateList,
);

#[test]
fn every_response_example_in_the_document_decodes() {
    let spec_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/runpod-v2/generated.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let components = &doc["components"]["responses"];
    let mut checked = 0;
    for (route, item) in doc["paths"].as_object().unwrap() {
        for (verb, operation) in item.as_object().unwrap() {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else { continue };
            for (status, response) in responses {
                let response = match response.get("$ref").and_then(Value::as_str) {
                    Some(r) => &components[r.rsplit('/').next().unwrap()],
                    None => response,
                };
                let Some(media) = response.pointer("/content/application~1json") else { continue };
                let Some(schema) = media.pointer("/schema/$ref").and_then(Value::as_str) else { continue };
                let name = schema.rsplit('/').next().unwrap();
                let examples = media.get("examples").and_then(Value::as_object).into_iter().flatten();
                for (label, example) in examples {
                    let result = decode(name, &example["value"])
                        .unwrap_or_else(|| panic!("{name} (from {verb} {route}) is missing from decoders!"));
                    if let Err(e) = result {
                        panic!("{verb} {route} {status} example {label:?} does not decode as {name}: {e}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} examples found");
}

async fn client(server: &MockServer) -> Client {
    Client::with_api_key(&SecretString::from(KEY), Some(&server.uri())).unwrap()
}

/// The document's own example pod, with our id.
fn pod() -> Value {
    let spec_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/runpod-v2/generated.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let mut pod = doc
        .pointer("/paths/~1v2~1pods/post/responses/201/content/application~1json/examples/pod/value")
        .expect("createPod's example")
        .clone();
    pod["id"] = json!("xedezhzb9la3ye");
    pod
}

#[tokio::test]
async fn create_pod_posts_json_with_bearer_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/pods"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(pod()))
        .expect(1)
        .mount(&server)
        .await;
    let body: types::CreatePodRequest = serde_json::from_value(json!({
        "name": "train-1", "image": "runpod/pytorch:2", "gpu": {"id": "NVIDIA H100 80GB HBM3", "count": 1},
        "cloud": "SECURE", "env": {"GPUCLOUD_LAUNCH": "abc"}
    }))
    .unwrap();
    let created = client(&server).await.create_pod().body(body).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(created.id, "xedezhzb9la3ye");
    let request = &server.received_requests().await.unwrap()[0];
    let sent: Value = request.body_json().unwrap();
    assert_eq!(sent["gpu"]["id"], "NVIDIA H100 80GB HBM3");
    assert_eq!(sent["env"]["GPUCLOUD_LAUNCH"], "abc");
    assert!(request.headers.get("api-version").is_none());
}

#[tokio::test]
async fn unknown_status_and_fields_decode() {
    let server = MockServer::start().await;
    let mut future = pod();
    future["status"] = json!("MIGRATING");
    future["gpu"]["id"] = json!("NVIDIA  RTX A4500");
    future["brandNewField"] = json!([1, 2]);
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"pods": [pod(), future],
            "pagination": {"nextCursor": null, "hasNextPage": false}})))
        .mount(&server)
        .await;
    let pods = client(&server).await.list_pods().send().await.unwrap().into_inner();
    assert_eq!(pods.pods.len(), 2);
    assert_eq!(serde_json::to_value(&pods.pods[1].status).unwrap(), "MIGRATING");
}

#[tokio::test]
async fn problem_json_429_is_typed_and_keeps_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/pods/abc"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("content-type", "application/problem+json")
                .insert_header("retry-after", "7")
                .insert_header("ratelimit", "limit=60, remaining=0, reset=7")
                .set_body_json(json!({"title": "Too Many Requests", "status": 429, "detail": "slow down"})),
        )
        .mount(&server)
        .await;
    let err = client(&server).await.get_pod().id("abc").send().await.unwrap_err();
    let Error::ErrorResponse(problem) = err else { panic!("expected a typed problem, got {err:?}") };
    assert_eq!(problem.status().as_u16(), 429);
    assert_eq!(problem.detail.as_deref(), Some("slow down"));
    assert_eq!(problem.headers()["retry-after"], "7");
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let client = Client::with_api_key(&SecretString::from(KEY), None).unwrap();
    assert!(!format!("{client:?}").contains(KEY));
}
