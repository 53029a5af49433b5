//! The emulator filters offers like the real APIs, and checks the bearer token.

use gpucloud_emulator::{Emulator, EmulatorConfig};

async fn get(emulator: &Emulator, path_and_query: &str, key: &str) -> (u16, serde_json::Value) {
    // The SDK's TLS settings (reqwest is built without a default crypto provider).
    let client =
        reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let response =
        client.get(format!("{}{path_and_query}", emulator.base_url())).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn primeintellect_availability_filters_and_paginates() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let key = emulator.api_key().to_string();
    let (status, all) = get(&emulator, "/api/v1/availability/gpus", &key).await;
    assert_eq!(status, 200);
    let total = all["totalCount"].as_u64().unwrap();
    assert!(total >= 10);
    let (_, h100) = get(
        &emulator,
        "/api/v1/availability/gpus?gpu_type=H100_80GB&gpu_count=1&regions=canada&regions=eu_north",
        &key,
    )
    .await;
    let items = h100["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|o| o["gpuType"] == "H100_80GB"
        && o["gpuCount"] == 1
        && (o["region"] == "canada" || o["region"] == "eu_north")));
    let (_, pcie) = get(&emulator, "/api/v1/availability/gpus?gpu_type=H100_80GB&socket=PCIe", &key).await;
    assert!(pcie["items"].as_array().unwrap().iter().all(|o| o["socket"] == "PCIe"));
    let (_, page2) = get(&emulator, "/api/v1/availability/gpus?page=2&page_size=4", &key).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 4);
    assert_eq!(page2["totalCount"].as_u64().unwrap(), total);
}

#[tokio::test]
async fn requests_without_the_key_get_401_in_each_apis_shape() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let (status, body) = get(&emulator, "/v2/pods", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["status"], 401);
    let (status, _) = get(&emulator, "/api/v1/pods/", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(emulator.stats().requests, 0, "rejected requests are not served");
}
