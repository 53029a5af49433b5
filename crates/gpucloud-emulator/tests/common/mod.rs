//! Helpers the emulator's integration tests share.

#![allow(dead_code, reason = "each test binary uses its own subset of these helpers")]

use std::future::Future;
use std::time::Duration;

/// Runs `future` within `limit`, or fails naming the test and the bound, so a hang is a failure
/// that says where it is, never a stuck CI job.
pub async fn bounded<T>(test: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{test}: did not finish within {limit:?}"),
    }
}

/// An HTTP client (rustls with ring, as the raw clients configure it) that follows no redirect,
/// so a test sees a `307` as such.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(runpod_api::tls_config().expect("a TLS configuration"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// One request to the emulator with its key: status, headers and the body as JSON (`Null` when
/// empty or not JSON).
pub async fn send(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut request = client.request(method, format!("{base}{path}")).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the emulator answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    (status, headers, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}
