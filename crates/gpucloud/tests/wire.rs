//! Facade behaviour that needs exact control of responses: pagination over both PrimeIntellect
//! page shapes and `Retry-After`.

use futures::TryStreamExt;
use gpucloud::{OfferQuery, Pagination, PrimeIntellect, Provisioner, RetryPolicy, RunPod, SecretString};
use serde_json::json;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-very-secret-key-4711";

fn pi(server: &MockServer) -> PrimeIntellect {
    PrimeIntellect::new(SecretString::from(KEY), Some(&server.uri())).unwrap().with_retry_policy(RetryPolicy::fast())
}

fn pod(id: usize) -> serde_json::Value {
    json!({"id": format!("pod{id}"), "userId": "u", "name": format!("p{id}"), "providerType": "runpod", "status": "ACTIVE",
           "gpuName": "H100_80GB", "gpuCount": 1, "socket": "PCIe", "priceHr": 2.0, "sshConnection": "root@1.2.3.4 -p 22"})
}

async fn mount_pods(server: &MockServer, total: usize, page: usize, failing_offset: Option<usize>) {
    for offset in (0..total).step_by(page) {
        let template = if Some(offset) == failing_offset {
            ResponseTemplate::new(400).set_body_json(json!({"detail": "bad page"}))
        } else {
            let data: Vec<_> = (offset..(offset + page).min(total)).map(pod).collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalCount": total, "offset": offset, "limit": page, "data": data}))
        };
        Mock::given(method("GET"))
            .and(path("/api/v1/pods/"))
            .and(query_param("offset", offset.to_string()))
            .and(query_param("limit", page.to_string()))
            .respond_with(template)
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn offset_pagination_reads_every_page_and_surfaces_a_failed_one() {
    let server = MockServer::start().await;
    mount_pods(&server, 7, 3, None).await;
    for prefetch in [1, 3] {
        let client = pi(&server).with_pagination(Pagination { page_size: 3, max_pages: 10, prefetch });
        let pods: Vec<_> = client.list().try_collect().await.unwrap();
        assert_eq!(
            pods.iter().map(|p| p.id.id().to_string()).collect::<Vec<_>>(),
            (0..7).map(|i| format!("pod{i}")).collect::<Vec<_>>()
        );
    }
    let failing = MockServer::start().await;
    mount_pods(&failing, 9, 3, Some(3)).await;
    let client = pi(&failing).with_pagination(Pagination { page_size: 3, max_pages: 10, prefetch: 1 });
    let err = client.list().try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
}

fn offer(i: usize) -> serde_json::Value {
    json!({"cloudId": format!("c{i}"), "gpuType": "H100_80GB", "socket": "SXM5", "provider": "hyperstack", "gpuCount": 1,
           "gpuMemory": 80, "stockStatus": "Available", "security": "secure_cloud", "images": ["ubuntu_22_cuda_12"],
           "prices": {"onDemand": 2.0 + i as f64, "currency": "USD"}})
}

#[tokio::test]
async fn page_number_pagination_reads_every_page_and_surfaces_a_failed_one() {
    for fail in [false, true] {
        let server = MockServer::start().await;
        for page in 1..=3usize {
            let template = if fail && page == 2 {
                ResponseTemplate::new(422)
                    .set_body_json(json!({"errors": [{"param": "page", "details": "out of range"}]}))
            } else {
                let items: Vec<_> = ((page - 1) * 100..(page * 100).min(250)).map(offer).collect();
                ResponseTemplate::new(200).set_body_json(json!({"items": items, "totalCount": 250}))
            };
            Mock::given(method("GET"))
                .and(path("/api/v1/availability/gpus"))
                .and(query_param("page", page.to_string()))
                .respond_with(template)
                .mount(&server)
                .await;
        }
        let result = pi(&server).offers(&OfferQuery::default()).await;
        if fail {
            let err = result.unwrap_err();
            assert_eq!(err.status(), Some(422));
            assert!(err.to_string().contains("page: out of range"), "{err}");
        } else {
            assert_eq!(result.unwrap().len(), 250);
        }
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .insert_header("content-type", "application/problem+json")
                .set_body_json(json!({"title": "Too Many Requests", "status": 429, "detail": "slow down"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"pods": [], "pagination": {"nextCursor": null, "hasNextPage": false}})),
        )
        .mount(&server)
        .await;
    let client =
        RunPod::new(SecretString::from(KEY), Some(&server.uri())).unwrap().with_retry_policy(RetryPolicy::fast());
    let started = Instant::now();
    let pods: Vec<_> = client.list().try_collect().await.unwrap();
    assert!(pods.is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert_eq!(client.retries(), 1);
}

#[tokio::test]
async fn the_authorization_header_is_not_forwarded_to_another_host_on_redirect() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"pods": [], "pagination": {"nextCursor": null, "hasNextPage": false}})),
        )
        .mount(&elsewhere)
        .await;
    let origin = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/v2/pods", elsewhere.uri()).as_str()),
        )
        .mount(&origin)
        .await;
    let client = RunPod::new(SecretString::from("sk-redirect-secret"), Some(&origin.uri())).unwrap();
    let pods: Vec<_> = client.list().try_collect().await.unwrap();
    assert!(pods.is_empty());
    let received = elsewhere.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "the redirect was followed");
    assert!(received[0].headers.get("authorization").is_none(), "the key must not reach another host");
    let at_origin = origin.received_requests().await.unwrap();
    assert!(at_origin[0].headers.get("authorization").is_some());
}

/// Error bodies the documents do not describe keep their HTTP status (and so their meaning).
#[tokio::test]
async fn off_document_error_bodies_keep_their_status() {
    let server = MockServer::start().await;
    // A gateway's 404 without the documented problem fields: the pod is already gone.
    Mock::given(method("DELETE"))
        .and(path("/v2/pods/gone1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "pod not found"})))
        .mount(&server)
        .await;
    // FastAPI's own validation body instead of PrimeIntellect's documented `errors[]`.
    Mock::given(method("DELETE"))
        .and(path("/api/v1/pods/bad"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"detail": [{"loc": ["path", "pod_id"], "msg": "bad id"}]})),
        )
        .mount(&server)
        .await;
    let runpod =
        RunPod::new(SecretString::from(KEY), Some(&server.uri())).unwrap().with_retry_policy(RetryPolicy::fast());
    let gone = gpucloud::PodId::new(gpucloud::Provider::RunPod, "gone1");
    runpod.terminate(&gone).await.expect("a 404 on delete means already gone");
    let bad = gpucloud::PodId::new(gpucloud::Provider::PrimeIntellect, "bad");
    match pi(&server).terminate(&bad).await {
        Err(gpucloud::Error::Api { status: 422, message, .. }) => assert_eq!(message, "path.pod_id: bad id"),
        other => panic!("expected the 422, got {other:?}"),
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "neither was retried");
}
