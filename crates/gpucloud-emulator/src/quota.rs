//! Rate limits as RunPod documents them: per API key, several windows at once (`minute` 60,
//! `hour` 3,000, `day` 50,000), each a sliding window over the requests it has let through.
//! Every authenticated RunPod response carries `RateLimit` (remaining `r` and seconds to reset
//! `t` per window) and `RateLimit-Policy` (quota `q` and window `w` per window); past a window
//! the answer is 429 with `Retry-After`. PrimeIntellect publishes no compute quota; a configured
//! one answers 429 with `Retry-After` and sends no headers, as PrimeIntellect documents none.

use crate::state::Api;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// One window: at most `limit` requests in any `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Its name in the headers (`minute`, `hour`, `day`).
    pub name: String,
    /// Requests allowed per period.
    pub limit: u64,
    /// The window's length.
    pub period: Duration,
}

impl QuotaWindow {
    /// A window named `name` of `limit` requests per `period`.
    pub fn new(name: &str, limit: u64, period: Duration) -> Self {
        Self { name: name.to_string(), limit, period }
    }
}

/// Which quotas the emulator enforces, per API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// RunPod's windows.
    pub runpod: Vec<QuotaWindow>,
    /// PrimeIntellect's windows (none documented; for tests).
    pub primeintellect: Vec<QuotaWindow>,
}

impl Quota {
    /// RunPod's documented windows (60/minute, 3,000/hour, 50,000/day); none for PrimeIntellect.
    pub fn documented() -> Self {
        Self {
            runpod: vec![
                QuotaWindow::new("minute", 60, Duration::from_secs(60)),
                QuotaWindow::new("hour", 3000, Duration::from_secs(3600)),
                QuotaWindow::new("day", 50_000, Duration::from_secs(86_400)),
            ],
            primeintellect: Vec::new(),
        }
    }

    /// The same limits with every window `factor` times shorter, for tests that cannot wait
    /// minutes (`documented().compressed(10)`: 60 requests per 6 s).
    pub fn compressed(mut self, factor: u32) -> Self {
        for window in self.runpod.iter_mut().chain(self.primeintellect.iter_mut()) {
            window.period /= factor.max(1);
        }
        self
    }

    fn windows(&self, api: Api) -> &[QuotaWindow] {
        match api {
            Api::RunPod => &self.runpod,
            Api::PrimeIntellect => &self.primeintellect,
        }
    }
}

/// Requests and quota refusals, per API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuotaStats {
    /// Requests let through.
    pub admitted: BTreeMap<String, u64>,
    /// Requests refused with 429 because a window was spent.
    pub refused: BTreeMap<String, u64>,
    /// The most requests any window saw within its period, per API and window name.
    pub peak: BTreeMap<String, u64>,
}

/// What the gate should do with a request.
pub(crate) enum Verdict {
    /// Let it through; send these headers with the response (RunPod).
    Admit(Vec<(&'static str, String)>),
    /// Answer 429 after this long, with these headers.
    Refuse(Duration, Vec<(&'static str, String)>),
}

/// The sliding windows' request logs.
#[derive(Debug, Default)]
pub(crate) struct QuotaState {
    log: BTreeMap<(Api, String), VecDeque<Instant>>,
    pub stats: QuotaStats,
}

impl QuotaState {
    /// Admits or refuses one request of `api` now.
    pub fn check(&mut self, quota: &Quota, api: Api) -> Verdict {
        let windows = quota.windows(api);
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        for window in windows {
            let log = self.log.entry((api, window.name.clone())).or_default();
            while log.front().is_some_and(|t| now.duration_since(*t) >= window.period) {
                log.pop_front();
            }
            if log.len() as u64 >= window.limit
                && let Some(oldest) = log.front()
            {
                wait = wait.max(window.period - now.duration_since(*oldest));
            }
        }
        let name = format!("{api:?}").to_lowercase();
        if !wait.is_zero() {
            *self.stats.refused.entry(name).or_default() += 1;
            return Verdict::Refuse(wait, self.headers(quota, api, now));
        }
        for window in windows {
            let log = self.log.entry((api, window.name.clone())).or_default();
            log.push_back(now);
            let peak = self.stats.peak.entry(format!("{name} {}", window.name)).or_default();
            *peak = (*peak).max(log.len() as u64);
        }
        *self.stats.admitted.entry(name).or_default() += 1;
        Verdict::Admit(self.headers(quota, api, now))
    }

    /// `RateLimit` and `RateLimit-Policy` for RunPod; nothing for PrimeIntellect.
    fn headers(&self, quota: &Quota, api: Api, now: Instant) -> Vec<(&'static str, String)> {
        if api != Api::RunPod || quota.runpod.is_empty() {
            return Vec::new();
        }
        let mut state = Vec::new();
        let mut policy = Vec::new();
        for window in &quota.runpod {
            let log = self.log.get(&(api, window.name.clone()));
            let used = log.map_or(0, |l| l.len() as u64);
            let reset = log
                .and_then(|l| l.front())
                .map_or(Duration::ZERO, |oldest| window.period.saturating_sub(now.duration_since(*oldest)));
            state.push(format!(
                "\"{}\";r={};t={}",
                window.name,
                window.limit.saturating_sub(used),
                reset.as_secs_f64().ceil() as u64
            ));
            policy.push(format!("\"{}\";q={};w={}", window.name, window.limit, window.period.as_secs().max(1)));
        }
        vec![("ratelimit", state.join(", ")), ("ratelimit-policy", policy.join(", "))]
    }
}
