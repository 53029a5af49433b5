//! The API key never appears in Debug output, error messages or `tracing` logs at TRACE.
//! (Its own test binary: `tracing`'s per-callsite interest cache is process-wide.)

use futures::TryStreamExt;
use gpucloud::{Error, PrimeIntellect, Provisioner, RetryPolicy, RunPod, SecretString};
use serde_json::json;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-very-secret-key-4711";

fn pi(server: &MockServer) -> PrimeIntellect {
    PrimeIntellect::new(SecretString::from(KEY), Some(&server.uri())).unwrap().with_retry_policy(RetryPolicy::fast())
}

/// Collects everything `tracing` emits, at TRACE.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_appears_in_no_log_error_or_debug_output() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || sink.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    // Every error path: a server that echoes the key, 5xx bursts, a malformed body, 401.
    Mock::given(method("GET"))
        .and(path("/api/v1/pods/"))
        .respond_with(ResponseTemplate::new(500).set_body_string(format!("bad key {KEY}")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/pods"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"pods\": ["))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/pods/x"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"title": "Unauthorized", "status": 401, "detail": KEY})),
        )
        .mount(&server)
        .await;
    let pi = pi(&server);
    let rp = RunPod::new(SecretString::from(KEY), Some(&server.uri())).unwrap().with_retry_policy(RetryPolicy::fast());
    let mut texts = vec![format!("{pi:?}"), format!("{rp:?}"), format!("{:?}", SecretString::from(KEY))];
    let errors: Vec<Error> = vec![
        pi.list().try_collect::<Vec<_>>().await.unwrap_err(),
        rp.list().try_collect::<Vec<_>>().await.unwrap_err(),
        rp.get(&"runpod:x".parse().unwrap()).await.unwrap_err(),
        PrimeIntellect::new(SecretString::from(KEY), Some("ftp://nowhere")).unwrap_err(),
        RunPod::new(SecretString::from(KEY), Some("http://127.0.0.1:1"))
            .unwrap()
            .with_retry_policy(RetryPolicy::none())
            .list()
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err(),
    ];
    for error in &errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "TRACE output was captured: {logs}");
    texts.push(logs);
    for text in texts {
        assert!(!text.contains(KEY), "the key leaked: {text}");
    }
    assert!(errors[0].to_string().contains("[redacted]"));
}
