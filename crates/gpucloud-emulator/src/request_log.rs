//! The request log ([`crate::EmulatorConfig::log_requests`], `gpucloud emulator --log-requests
//! FILE`): one JSON line per exchange, so a user can see what their own client sent and what it
//! was answered. Secrets in request bodies are masked before anything is written.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::Mutex;

/// What replaces a masked value.
pub(crate) const MASK: &str = "***";

/// Whether a field or variable named `name` holds a secret: passwords, tokens, secrets, keys
/// (`apiKey`, `publicKey`, `keys`, `AWS_SECRET_ACCESS_KEY`), credentials, authorizations.
pub(crate) fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "credential", "auth", "private"].iter().any(|w| lower.contains(w))
        || lower.ends_with("key")
        || lower.ends_with("keys")
        || lower.ends_with("_key_id")
}

/// `value` with every secret replaced by [`MASK`]:
/// - a field whose name is secret-like (`password`, `apiKey`, `keys`, ...);
/// - in `env` maps (RunPod: `{"HF_TOKEN": "..."}`), the values of variables named like secrets;
/// - in `{key, value}` entries (PrimeIntellect `envVars`), the value when the key is named like
///   a secret;
/// - the `value` of an object without a `key` (a secret create: `{"name", "value"}`).
pub(crate) fn mask(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        Value::Object(fields) => {
            let entry_key = fields.get("key").and_then(Value::as_str);
            let mut out = Map::new();
            for (name, field) in fields {
                let masked = if name == "key" {
                    field.clone()
                } else if name == "value" {
                    match entry_key {
                        Some(key) if !secret_name(key) => mask(field),
                        _ => json!(MASK),
                    }
                } else if secret_name(name) {
                    json!(MASK)
                } else if name == "env" {
                    match field {
                        Value::Object(vars) => Value::Object(
                            vars.iter()
                                .map(|(k, v)| (k.clone(), if secret_name(k) { json!(MASK) } else { v.clone() }))
                                .collect(),
                        ),
                        other => mask(other),
                    }
                } else {
                    mask(field)
                };
                out.insert(name.clone(), masked);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// One exchange, as logged.
pub(crate) struct Exchange<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
    pub body: &'a [u8],
}

/// The JSON line of `exchange`: the body as JSON (masked) when it is JSON, else its size.
pub(crate) fn line(exchange: &Exchange<'_>) -> String {
    let body = if exchange.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(exchange.body) {
            Ok(json) => mask(&json),
            Err(_) => json!(format!("<{} bytes, not JSON>", exchange.body.len())),
        }
    };
    json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "method": exchange.method, "path": exchange.path, "query": exchange.query,
        "status": exchange.status, "duration_ms": (exchange.duration_ms * 1000.0).round() / 1000.0,
        "body": body
    })
    .to_string()
}

/// The open log file.
#[derive(Debug)]
pub(crate) struct RequestLog(Mutex<std::fs::File>);

impl RequestLog {
    /// Opens (creates, or appends to) `path`.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self(Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?)))
    }

    /// Writes one line; a failed write is reported once per failure in the emulator's own log
    /// and never fails the exchange.
    pub fn write(&self, exchange: &Exchange<'_>) {
        let mut line = line(exchange);
        line.push('\n');
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "the request log could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        let body = json!({
            "name": "pod", "image": "ubuntu", "password": "p", "apiKey": "k",
            "env": {"HF_TOKEN": "hf_x", "AWS_SECRET_ACCESS_KEY": "aws", "FOO": "bar"},
            "pod": {"envVars": [{"key": "API_KEY", "value": "v1"}, {"key": "MODE", "value": "fast"}]},
            "keys": ["ssh-ed25519 AAAA me"]
        });
        let masked = mask(&body);
        assert_eq!(masked["name"], "pod");
        assert_eq!(masked["image"], "ubuntu");
        assert_eq!(masked["password"], MASK);
        assert_eq!(masked["apiKey"], MASK);
        assert_eq!(masked["env"], json!({"HF_TOKEN": MASK, "AWS_SECRET_ACCESS_KEY": MASK, "FOO": "bar"}));
        assert_eq!(
            masked["pod"]["envVars"],
            json!([{"key": "API_KEY", "value": MASK}, {"key": "MODE", "value": "fast"}])
        );
        assert_eq!(masked["keys"], MASK);
        // A secret create: its value whatever its name.
        assert_eq!(mask(&json!({"name": "MODE", "value": "x"}))["value"], MASK);
        let text = line(&Exchange {
            method: "POST",
            path: "/v2/pods",
            query: Some("a=1"),
            status: 201,
            duration_ms: 1.5,
            body: body.to_string().as_bytes(),
        });
        for secret in ["hf_x", "aws", "\"p\"", "v1", "AAAA"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (parsed["method"].as_str(), parsed["status"].as_u64(), parsed["query"].as_str()),
            (Some("POST"), Some(201), Some("a=1"))
        );
    }
}
