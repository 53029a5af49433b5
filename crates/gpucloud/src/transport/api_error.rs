//! Turning a generated client's `progenitor_client::Error` into [`Error`], with the provider's
//! own message and the wait it asked for.

use crate::model::Provider;
use crate::model::error::Error;
use progenitor_client::Error as RawError;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// The provider's human-readable message from a typed error body.
pub(crate) trait ProviderMessage {
    fn message(&self) -> String;
}

#[cfg(feature = "primeintellect")]
impl ProviderMessage for primeintellect_api::types::ErrorResponse {
    fn message(&self) -> String {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| match (&e.param, &e.details) {
                (Some(param), Some(details)) => format!("{param}: {details}"),
                (param, details) => param.iter().chain(details).cloned().collect(),
            })
            .filter(|part| !part.is_empty())
            .collect();
        if parts.is_empty()
            && let Some(detail) = &self.detail
        {
            return fastapi_detail(detail);
        }
        parts.join("; ")
    }
}

/// FastAPI's own error body, `{"detail": "..."}` or `{"detail": [{"loc": [...], "msg": ...}]}`,
/// as one line: `query.regions: Input should be ...; body.pod.name: Field required`.
#[cfg(feature = "primeintellect")]
fn fastapi_detail(detail: &serde_json::Value) -> String {
    use serde_json::Value;
    match detail {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let loc: Vec<String> = item
                    .get("loc")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter().map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string())).collect()
                    })
                    .unwrap_or_default();
                let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                if loc.is_empty() { msg.to_string() } else { format!("{}: {msg}", loc.join(".")) }
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[cfg(feature = "runpod")]
impl ProviderMessage for runpod_api::types::ErrorResponse {
    fn message(&self) -> String {
        let parts = [&self.title, &self.detail].into_iter().flatten().filter(|part| !part.is_empty());
        let mut text = parts.cloned().collect::<Vec<_>>().join(": ");
        if !self.errors.is_empty() {
            text.push_str(&format!(" ({})", self.errors.join("; ")));
        }
        text
    }
}

impl ProviderMessage for () {
    fn message(&self) -> String {
        String::new()
    }
}

/// Where a call was made, for error context.
pub(crate) struct CallSite<'a> {
    pub provider: Provider,
    pub operation: &'static str,
    pub api_key: &'a SecretString,
}

impl CallSite<'_> {
    /// Server text with any copy of the API key removed, and bounded in length.
    fn scrub(&self, text: &str) -> String {
        let key = self.api_key.expose_secret();
        let mut text = if key.len() >= 4 { text.replace(key, "[redacted]") } else { text.to_string() };
        if text.len() > 500 {
            let cut = (0..=500).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        text
    }

    pub(crate) async fn convert<E: ProviderMessage>(&self, err: RawError<E>) -> Error {
        let (provider, operation) = (self.provider, self.operation);
        match err {
            RawError::ErrorResponse(response) => {
                let status = response.status().as_u16();
                // Error bodies decode leniently (any JSON object): an empty one says nothing.
                let message =
                    Some(response.message()).filter(|m| !m.trim().is_empty()).unwrap_or_else(|| reason(status));
                Error::Api {
                    provider,
                    operation,
                    status,
                    retry_after: retry_after(response.headers()),
                    message: self.scrub(&message),
                }
            }
            RawError::UnexpectedResponse(response) => {
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                let body = response.text().await.unwrap_or_default();
                let message = message_from_body(&body)
                    .unwrap_or_else(|| if body.trim().is_empty() { reason(status) } else { body.trim().to_string() });
                Error::Api { provider, operation, status, retry_after, message: self.scrub(&message) }
            }
            RawError::InvalidResponsePayload(bytes, e) => Error::Decode {
                provider,
                operation,
                status: 200,
                message: self.scrub(&format!("{e} ({} bytes)", bytes.len())),
            },
            RawError::ResponseBodyError(e) => Error::Transport {
                provider,
                operation,
                message: self.scrub(&format!("reading the response body: {}", error_chain(&e))),
                maybe_sent: true,
            },
            RawError::CommunicationError(e) => Error::Transport {
                provider,
                operation,
                maybe_sent: !e.is_connect(),
                message: self.scrub(&error_chain(&e)),
            },
            RawError::InvalidRequest(message) | RawError::Custom(message) => {
                Error::InvalidInput { field: "request", message: self.scrub(&message) }
            }
            RawError::InvalidUpgrade(e) => {
                Error::Transport { provider, operation, message: self.scrub(&error_chain(&e)), maybe_sent: true }
            }
        }
    }
}

/// A reqwest error with its sources: reqwest's own Display hides the cause ("error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error").to_string()
}

/// Pulls a message out of an error body that did not match the documented type.
pub(crate) fn message_from_body(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    for key in ["detail", "message", "error", "title"] {
        match value.get(key) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => return Some(s.clone()),
            Some(v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => return Some(v.to_string()),
            _ => {}
        }
    }
    value.get("errors").map(|e| e.to_string())
}

/// The wait a response asks for: `Retry-After` (seconds or HTTP date), else the reset of an
/// exhausted `RateLimit` header (`limit=60, remaining=0, reset=7` or `"default";r=0;t=7`).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(value) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<f64>() {
            if seconds.is_finite() && seconds >= 0.0 {
                return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
            }
        } else if let Ok(date) = chrono::DateTime::parse_from_rfc2822(value) {
            let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
            return Some(wait.to_std().unwrap_or(Duration::ZERO));
        }
    }
    // One or more policies, comma-separated: `limit=60, remaining=0, reset=7` (one policy in
    // key=value form) or `"minute";r=0;t=12, "hour";r=2800;t=1812` (structured, one per item).
    let rate_limit = headers.get("ratelimit")?.to_str().ok()?;
    let structured = rate_limit.contains(';');
    let items: Vec<&str> = if structured { rate_limit.split(',').collect() } else { vec![rate_limit] };
    let mut wait: Option<u64> = None;
    for item in items {
        let mut remaining = None;
        let mut reset = None;
        for part in item.split([',', ';']) {
            let Some((key, value)) = part.trim().split_once('=') else { continue };
            let value = value.trim().trim_matches('"');
            match key.trim() {
                "remaining" | "r" => remaining = value.parse::<u64>().ok(),
                "reset" | "t" => reset = value.parse::<u64>().ok(),
                _ => {}
            }
        }
        if remaining == Some(0) {
            let this = reset.unwrap_or(1).min(86_400);
            wait = Some(wait.map_or(this, |w| w.max(this)));
        }
    }
    wait.map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_rate_limit_resets() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit", HeaderValue::from_static("limit=60, remaining=0, reset=12"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert("ratelimit", HeaderValue::from_static("\"default\";r=0;t=3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("ratelimit", HeaderValue::from_static("limit=60, remaining=5, reset=12"));
        assert_eq!(retry_after(&headers), None);
        // RunPod's documented form: only the exhausted window counts.
        headers.insert("ratelimit", HeaderValue::from_static("\"minute\";r=0;t=12, \"hour\";r=2800;t=1812"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert("ratelimit", HeaderValue::from_static("\"minute\";r=5;t=12, \"hour\";r=0;t=1812"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(1812)));
    }

    #[test]
    fn messages_come_out_of_undocumented_bodies() {
        assert_eq!(message_from_body(r#"{"detail":"Not authenticated"}"#).as_deref(), Some("Not authenticated"));
        assert_eq!(message_from_body("<html>"), None);
    }

    #[cfg(feature = "primeintellect")]
    #[test]
    fn fastapi_validation_bodies_keep_their_message() {
        let body: primeintellect_api::types::ErrorResponse = serde_json::from_value(serde_json::json!({"detail": [
            {"type": "enum", "loc": ["query", "regions", 0], "msg": "Input should be 'africa', 'canada' or 'united_states'", "input": "US"}
        ]}))
        .unwrap();
        assert_eq!(body.message(), "query.regions.0: Input should be 'africa', 'canada' or 'united_states'");
        let body: primeintellect_api::types::ErrorResponse =
            serde_json::from_value(serde_json::json!({"detail": "Not Found"})).unwrap();
        assert_eq!(body.message(), "Not Found");
    }

    #[test]
    fn server_text_is_scrubbed_of_the_key() {
        let key = SecretString::from("sk-secret-123");
        let site = CallSite { provider: Provider::RunPod, operation: "get_pod", api_key: &key };
        assert_eq!(site.scrub("bad token sk-secret-123"), "bad token [redacted]");
    }
}
