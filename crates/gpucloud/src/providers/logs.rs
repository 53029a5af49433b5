//! Pod logs as a stream of lines ([`Provisioner::logs`](crate::Provisioner::logs)).
//!
//! - **RunPod** streams logs as server-sent events (`GET /v2/pods/{id}/logs`), each event with an
//!   `id:` (its timestamp and sequence) and a JSON `data:` `{source, line, ts}`. When the
//!   connection drops (the network, a proxy, the client's request timeout), the stream reconnects
//!   with `Last-Event-ID` set to the last event received, and skips anything at or before it, so
//!   no line is repeated or lost. Without `follow`, it ends once the backfill is delivered.
//! - **PrimeIntellect** returns the most recent lines (`GET /api/v1/pods/{id}/log?tail=N`); its
//!   document gives the body no shape, so a JSON string, a list of strings, a list of objects
//!   with a `line`/`message`/`log` field, or an object holding one of those under
//!   `logs`/`lines`/`data`/`output` are all read. `follow` polls and emits what is new (the
//!   longest overlap between the previous and the new window is skipped).

use crate::model::error::{Error, Result};
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use std::time::Duration;

/// Which log lines [`Provisioner::logs`](crate::Provisioner::logs) streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// How many recent lines to start with (RunPod allows at most 5,000).
    pub tail: u32,
    /// Keep streaming new lines until the stream is dropped (or the pod is gone).
    pub follow: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self { tail: 100, follow: false }
    }
}

impl LogOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.tail > 5000 {
            return Err(Error::invalid("tail", format!("{} is more than the 5000 lines allowed", self.tail)));
        }
        Ok(())
    }
}

/// A stream fed by a task: the task stops when the stream is dropped (its sends fail), and an
/// error it ends with is the stream's last item.
pub(crate) fn from_task<F, Fut>(produce: F) -> BoxStream<'static, Result<String>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<String>>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(256);
    let producing = produce(sender.clone());
    tokio::spawn(async move {
        if let Err(error) = producing.await {
            let _ = sender.send(Err(error)).await;
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) })
        .boxed()
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub id: Option<String>,
    pub data: String,
}

/// Incremental server-sent-events parser (the WHATWG event-stream format, as far as logs need).
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: String,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.push_str(&String::from_utf8_lossy(bytes));
        let mut events = Vec::new();
        loop {
            let normalized = self.buffer.replace("\r\n", "\n");
            let Some(end) = normalized.find("\n\n") else {
                self.buffer = normalized;
                return events;
            };
            let (block, rest) = normalized.split_at(end);
            let (mut id, mut data) = (None, Vec::new());
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => id = Some(value.to_string()),
                    "data" => data.push(value.to_string()),
                    _ => {} // comments (`: keep-alive`), `event:`, `retry:`
                }
            }
            if !data.is_empty() {
                events.push(SseEvent { id, data: data.join("\n") });
            }
            self.buffer = rest[2..].to_string();
        }
    }
}

impl SseParser {
    /// At the end of the stream: an event whose terminating blank line never came (RunPod's own
    /// example ends so). The format says to drop it; a log line is better kept.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.buffer.push_str("\n\n");
        self.feed(b"").pop()
    }
}

/// The log line of a RunPod event: the `line` of its JSON data, or the data itself.
pub(crate) fn runpod_line(event: &SseEvent) -> String {
    match serde_json::from_str::<Value>(&event.data) {
        Ok(Value::Object(map)) => map.get("line").and_then(Value::as_str).unwrap_or(&event.data).to_string(),
        _ => event.data.clone(),
    }
}

/// The lines of a PrimeIntellect log body, whatever its shape (see the module documentation).
pub(crate) fn primeintellect_lines(body: &Value) -> Vec<String> {
    match body {
        Value::String(text) => text.lines().map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(line) => Some(line.clone()),
                Value::Object(map) => ["line", "message", "log", "text"]
                    .iter()
                    .find_map(|k| map.get(*k).and_then(Value::as_str))
                    .map(str::to_string),
                _ => None,
            })
            .collect(),
        Value::Object(map) => ["logs", "lines", "data", "output", "log"]
            .iter()
            .find_map(|k| map.get(*k))
            .map(primeintellect_lines)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// What `next` adds to `previous`: `next` minus the longest prefix of it that ends `previous`.
pub(crate) fn new_lines<'a>(previous: &[String], next: &'a [String]) -> &'a [String] {
    let overlap =
        (0..=next.len().min(previous.len())).rev().find(|&k| previous[previous.len() - k..] == next[..k]).unwrap_or(0);
    &next[overlap..]
}

/// How long a RunPod stream without `follow` may stay silent before its backfill counts as done.
pub(crate) const BACKFILL_IDLE: Duration = Duration::from_secs(2);

/// How many times in a row a followed stream may fail to reconnect before it gives up.
pub(crate) const MAX_RECONNECTS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_parsed_across_chunk_boundaries_and_line_endings() {
        let mut parser = SseParser::default();
        let stream = "id: 2026-06-01T12:02:03Z/000000000001\ndata: {\"ts\":\"x\",\"source\":\"container\",\"line\":\"Model loaded.\"}\n\n: keep-alive\n\nid: b\r\ndata: plain\r\n\r\n";
        let mut events = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            events.extend(parser.feed(chunk));
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id.as_deref(), Some("2026-06-01T12:02:03Z/000000000001"));
        assert_eq!(runpod_line(&events[0]), "Model loaded.");
        assert_eq!(events[1], SseEvent { id: Some("b".into()), data: "plain".into() });
        assert_eq!(runpod_line(&events[1]), "plain");
        let mut unterminated = SseParser::default();
        assert!(unterminated.feed(b"id: 1\ndata: last\n").is_empty());
        assert_eq!(unterminated.finish(), Some(SseEvent { id: Some("1".into()), data: "last".into() }));
        assert_eq!(SseParser::default().finish(), None);
    }

    #[test]
    fn primeintellect_bodies_of_every_shape_give_lines() {
        let lines = vec!["a".to_string(), "b".to_string()];
        for body in [
            json!("a\nb"),
            json!(["a", "b"]),
            json!([{"message": "a"}, {"line": "b"}]),
            json!({"logs": ["a", "b"]}),
            json!({"data": "a\nb"}),
        ] {
            assert_eq!(primeintellect_lines(&body), lines, "{body}");
        }
        assert!(primeintellect_lines(&json!(null)).is_empty());
    }

    #[test]
    fn only_what_is_new_is_emitted() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(new_lines(&s(&["1", "2", "3"]), &s(&["2", "3", "4", "5"])), s(&["4", "5"]));
        assert_eq!(new_lines(&s(&[]), &s(&["1"])), s(&["1"]));
        assert_eq!(new_lines(&s(&["1", "2"]), &s(&["1", "2"])), s(&[]));
        assert_eq!(new_lines(&s(&["1", "2"]), &s(&["7", "8"])), s(&["7", "8"]));
    }
}
