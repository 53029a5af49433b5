//! PrimeIntellect multi-node pods against a server that answers as little as the document
//! allows: what a cluster launch's cleanup finds by its launch tag.

use gpucloud::{PrimeIntellect, Provisioner, RetryPolicy, SecretString};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A launch whose create was ambiguous (or whose future was dropped mid-create) has only its
/// tag to find what it started. The multi-node pod it made may still be provisioning with no
/// `clusterId` and no `sshConnection`/`ip` lists (nothing in the document says when they are
/// set): it is that launch's all the same, and must be found, or it is never deleted.
#[tokio::test]
async fn a_tagged_pod_is_found_by_its_tag_before_it_reads_as_multi_node() {
    let server = MockServer::start().await;
    let tag = "gcq1w2e3r4t5";
    let pod = json!({
        "id": "pod-a1", "name": format!("train-{tag}"), "status": "PROVISIONING", "gpuName": "H100_80GB",
        "gpuCount": 16, "priceHr": 40.0, "providerType": "hyperstack", "socket": "SXM5", "userId": "u1",
        "clusterId": null, "sshConnection": null, "ip": null,
    });
    let other = json!({
        "id": "pod-b2", "name": "someone-else-gcz9x8c7v6b5", "status": "PROVISIONING", "gpuName": "H100_80GB",
        "gpuCount": 16, "priceHr": 40.0, "providerType": "hyperstack", "socket": "SXM5", "userId": "u1",
        "clusterId": "c-2", "sshConnection": null, "ip": null,
    });
    Mock::given(method("GET"))
        .and(path("/api/v1/pods/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [pod, other], "totalCount": 2})))
        .mount(&server)
        .await;
    let pi = PrimeIntellect::new(SecretString::from("pi-key"), Some(&server.uri()))
        .unwrap()
        .with_retry_policy(RetryPolicy::fast());
    let found = pi.find_clusters_by_launch_tag(tag).await.unwrap();
    let ids: Vec<String> = found.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids, vec!["primeintellect:pod-a1".to_string()], "the launch's pod, and only it");
    assert_eq!(found[0].single_pod.as_ref().map(ToString::to_string).as_deref(), Some("primeintellect:pod-a1"));
    assert!(found[0].member_ids().iter().any(|m| m.to_string() == "primeintellect:pod-a1"));
}
