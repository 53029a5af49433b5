//! Pacing by the provider's own rate-limit headers, so a client stays inside its quota instead
//! of bouncing off 429s.
//!
//! RunPod sends `RateLimit: "minute";r=42;t=18, "hour";r=2800;t=1812, ...` (requests remaining
//! and seconds to reset, per window) and `RateLimit-Policy: "minute";q=60;w=60, ...` on every
//! authenticated response. Each client numbers the requests it lets through; the latest answer
//! says how many remained when its request was counted, so what remains now is that figure less
//! the requests let through since. A request goes when every window has room; otherwise it waits
//! for a later answer or the window's reset. Reads (polls, lists) leave a tenth of each window
//! for actions (creates, terminations, stop/start), so cleanup is never starved by polling.
//!
//! Until the first answer the client sends one request at a time (it knows nothing yet); a
//! provider whose answers carry no `RateLimit` header (PrimeIntellect) is not paced at all.
//! A 429 with `Retry-After` remains handled by the retry policy. Waits are bounded: no request
//! waits longer than [`MAX_PACING_WAIT`] at a stretch, however the headers read.

use reqwest::header::HeaderMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The longest one request is held back at a stretch.
pub const MAX_PACING_WAIT: Duration = Duration::from_secs(60);

/// How a request ranks when a window is nearly spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Reads and polls: leave a tenth of each window for actions.
    Read,
    /// Creates, terminations, stop/start, renames: may use the whole window.
    Action,
}

/// One window as of the latest answer.
#[derive(Debug, Clone)]
struct Window {
    remaining: u64,
    quota: Option<u64>,
    /// The window's length, from `RateLimit-Policy`.
    period: Option<Duration>,
    resets_at: Instant,
}

/// What the latest answer said.
#[derive(Debug)]
struct Observation {
    /// The number of the request it answered.
    number: u64,
    windows: Vec<Window>,
    /// A request already went to probe a window that has reset since.
    probed: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Requests let through so far.
    admitted: u64,
    /// The latest answer.
    observed: Option<Observation>,
    /// The provider sends no rate-limit headers: nothing to pace.
    unlimited: bool,
    /// Nothing is known yet and a request is out to find out.
    probing: bool,
    /// Requests let through and not yet answered. One sent before the latest answer's request
    /// may reach the server after it, uncounted in that answer.
    in_flight: std::collections::BTreeSet<u64>,
    /// When this client let its recent requests through: answers race each other over several
    /// connections, but this client's own count per window is exact.
    sent_at: std::collections::VecDeque<Instant>,
}

impl State {
    /// Counts one more request as going now; returns its number.
    fn let_through(&mut self) -> u64 {
        self.admitted += 1;
        self.in_flight.insert(self.admitted);
        let now = Instant::now();
        self.sent_at.push_back(now);
        // The longest window is a day; older entries can matter to none.
        while self.sent_at.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(90_000)) {
            self.sent_at.pop_front();
        }
        self.admitted
    }
}

/// A client's pacer (shared by its clones).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pacer {
    state: Arc<Mutex<State>>,
    answered: Arc<tokio::sync::Notify>,
}

impl Pacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a request of `priority` may go; returns its number for [`Pacer::observe`].
    pub async fn admit(&self, priority: Priority) -> u64 {
        let started = Instant::now();
        loop {
            let wait = {
                let mut state = self.lock();
                match self.room(&mut state, priority) {
                    None => {
                        state.probing |= state.observed.is_none() && !state.unlimited;
                        return state.let_through();
                    }
                    Some(wait) => wait,
                }
            };
            let left = MAX_PACING_WAIT.saturating_sub(started.elapsed());
            if left.is_zero() {
                return self.lock().let_through();
            }
            tracing::debug!(wait_ms = wait.as_millis() as u64, ?priority, "pacing: waiting for the rate-limit window");
            // A new answer may free room before the window resets.
            let _ = tokio::time::timeout(wait.min(left), self.answered.notified()).await;
        }
    }

    /// `None` when a request may go now (and counts it as going); otherwise how long to wait at
    /// most before looking again.
    fn room(&self, state: &mut State, priority: Priority) -> Option<Duration> {
        if state.unlimited {
            return None;
        }
        let Some(observation) = &mut state.observed else {
            // Nothing known yet: one request at a time until the first answer.
            return state.probing.then_some(Duration::from_millis(500));
        };
        // Sent since that answer's request, plus those sent before it that are still out.
        let earlier_in_flight = state.in_flight.range(..observation.number).count() as u64;
        let since = state.admitted.saturating_sub(observation.number) + earlier_in_flight;
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        let mut stale = false;
        for window in &observation.windows {
            // At most quota - 1, so a window always has room for a read once it drains.
            let reserve = match priority {
                Priority::Action => 0,
                Priority::Read => window.quota.map_or(1, |q| (q / 10).max(1).min(q.saturating_sub(1))),
            };
            // This client's own requests in the window (counted a little longer than the window,
            // since the server counts each one from when it arrives). `sent_at` is in send order,
            // so those still inside the horizon are its tail.
            if let (Some(quota), Some(period)) = (window.quota.filter(|q| *q > 0), window.period) {
                let horizon = period + period / 20 + Duration::from_millis(100);
                let first = state.sent_at.partition_point(|t| now.duration_since(*t) >= horizon);
                let recent = (state.sent_at.len() - first) as u64;
                if recent + reserve >= quota {
                    // Room again once this many of them have left the window (at least one,
                    // and there are that many: the reserve is below the quota).
                    let leaving = (recent + reserve + 1 - quota) as usize;
                    let last_to_leave = state.sent_at[first + leaving - 1];
                    let until = (last_to_leave + horizon).saturating_duration_since(now);
                    wait = Some(wait.map_or(until, |w| w.max(until)));
                    continue;
                }
            }
            if window.remaining.saturating_sub(since) > reserve {
                continue;
            }
            if now >= window.resets_at {
                stale = true; // its oldest requests have left the window: how much room is unknown
                continue;
            }
            let until = window.resets_at - now;
            wait = Some(wait.map_or(until, |w| w.max(until)));
        }
        match (wait, stale) {
            (Some(wait), _) => Some(wait.clamp(Duration::from_millis(50), Duration::from_secs(5))),
            // One request probes a window that has reset; its answer tells how much room there is.
            (None, true) if !observation.probed => {
                observation.probed = true;
                None
            }
            (None, true) => Some(Duration::from_millis(200)),
            (None, false) => None,
        }
    }

    /// Records how request `number` ended: the headers of its answer, or `None` when there was
    /// no answer (a transport error).
    pub fn observe(&self, number: u64, headers: Option<&HeaderMap>) {
        let mut state = self.lock();
        state.probing = false;
        state.in_flight.remove(&number);
        let Some(headers) = headers else {
            drop(state);
            self.answered.notify_waiters();
            return;
        };
        match parse(headers) {
            None if state.observed.is_none() => state.unlimited = true,
            // Answers can arrive out of order: an older one says less about now.
            Some(windows) if state.observed.as_ref().is_none_or(|latest| number >= latest.number) => {
                state.observed = Some(Observation { number, windows, probed: false });
                state.unlimited = false;
            }
            _ => {}
        }
        drop(state);
        self.answered.notify_waiters();
    }
}

/// The windows of a `RateLimit` header, with their quotas from `RateLimit-Policy`.
fn parse(headers: &HeaderMap) -> Option<Vec<Window>> {
    let items = |name: &str| -> Vec<(String, Vec<(String, u64)>)> {
        let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else { return Vec::new() };
        value
            .split(',')
            .filter_map(|item| {
                let mut parts = item.trim().split(';');
                let name = parts.next()?.trim().trim_matches('"').to_string();
                let params = parts
                    .filter_map(|p| p.split_once('='))
                    .filter_map(|(k, v)| Some((k.trim().to_string(), v.trim().parse().ok()?)))
                    .collect();
                Some((name, params))
            })
            .collect()
    };
    let state = items("ratelimit");
    if state.is_empty() {
        return None;
    }
    let policy = items("ratelimit-policy");
    let now = Instant::now();
    let param = |params: &[(String, u64)], key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let windows: Vec<Window> = state
        .iter()
        .filter_map(|(name, params)| {
            let policy = policy.iter().find(|(n, _)| n == name).map(|(_, p)| p.as_slice()).unwrap_or_default();
            Some(Window {
                remaining: param(params, "r")?,
                quota: param(policy, "q"),
                period: param(policy, "w").map(|w| Duration::from_secs(w.clamp(1, 86_400))),
                resets_at: now + Duration::from_secs(param(params, "t").unwrap_or(1).min(86_400)),
            })
        })
        .collect();
    (!windows.is_empty()).then_some(windows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(state: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit", HeaderValue::from_str(state).unwrap());
        headers.insert("ratelimit-policy", HeaderValue::from_static("\"minute\";q=60;w=60, \"hour\";q=3000;w=3600"));
        headers
    }

    #[tokio::test(start_paused = true)]
    async fn reads_leave_a_tenth_for_actions_and_wait_for_the_reset() {
        let pacer = Pacer::default();
        let first = pacer.admit(Priority::Read).await;
        pacer.observe(first, Some(&headers("\"minute\";r=8;t=30, \"hour\";r=2900;t=3000")));
        // 8 left, a reserve of 6 for actions: two reads go, the third waits.
        pacer.admit(Priority::Read).await;
        pacer.admit(Priority::Read).await;
        let started = Instant::now();
        let action = pacer.admit(Priority::Action).await;
        assert!(started.elapsed() < Duration::from_millis(1), "actions use the reserve");
        let waited = tokio::spawn({
            let pacer = pacer.clone();
            async move {
                let started = Instant::now();
                pacer.admit(Priority::Read).await;
                started.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waited.is_finished(), "the read waits while the window is nearly spent");
        pacer.observe(action, Some(&headers("\"minute\";r=60;t=60, \"hour\";r=2896;t=2990")));
        assert!(waited.await.unwrap() < Duration::from_secs(2), "a fresh answer frees it");
    }

    #[tokio::test(start_paused = true)]
    async fn tiny_or_empty_quotas_in_the_headers_do_not_panic() {
        for (state, policy) in
            [("\"minute\";r=1;t=5", "\"minute\";q=1;w=5"), ("\"minute\";r=0;t=1", "\"minute\";q=0;w=1")]
        {
            let pacer = Pacer::default();
            let first = pacer.admit(Priority::Read).await;
            let mut headers = HeaderMap::new();
            headers.insert("ratelimit", HeaderValue::from_str(state).unwrap());
            headers.insert("ratelimit-policy", HeaderValue::from_str(policy).unwrap());
            pacer.observe(first, Some(&headers));
            // Once this client's requests have left the window, none are recent at all.
            tokio::time::sleep(Duration::from_secs(10)).await;
            pacer.admit(Priority::Read).await;
            pacer.admit(Priority::Action).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_known_means_one_at_a_time_and_no_headers_mean_no_pacing() {
        let pacer = Pacer::default();
        let first = pacer.admit(Priority::Read).await;
        let second = tokio::spawn({
            let pacer = pacer.clone();
            async move { pacer.admit(Priority::Read).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!second.is_finished());
        pacer.observe(first, Some(&HeaderMap::new()));
        second.await.unwrap();
        for _ in 0..1000 {
            pacer.admit(Priority::Read).await; // unlimited: never waits
        }
    }
}
