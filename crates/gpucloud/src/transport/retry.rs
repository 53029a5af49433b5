//! The retry policy: which failed requests are sent again, how long to wait, and how many
//! retries a client may spend.
//!
//! **Reads and deletes** (`get`, `list`, `offers`, `terminate`, volume reads and deletes) are
//! retried on connection errors, timeouts, unreadable bodies, 408, 429 and 5xx, up to
//! [`RetryPolicy::max_attempts`], waiting an exponentially growing, fully jittered delay between
//! [`RetryPolicy::initial_backoff`] and [`RetryPolicy::max_backoff`] — or exactly what the
//! provider asked for in `Retry-After` (or an exhausted RunPod `RateLimit` header), capped at
//! [`RetryPolicy::max_retry_after`].
//!
//! **Creates are never re-sent after an ambiguous failure** (timeout, dropped connection, 5xx,
//! unreadable success body): the server may have created a billed pod. Only failures that prove
//! the request was not processed — a 429, or a connection that never opened — are retried.
//! Ambiguous failures are reconciled instead: see [`Provisioner::create`](crate::Provisioner::create).
//!
//! **Retry budget**: each client holds [`RetryPolicy::budget`] tokens; a retry spends 5 (10 after
//! a transport error). A call that finally succeeds gives back what its retries spent (at least
//! 1), so transient faults cost nothing in the long run, while calls that keep failing drain the
//! budget. An empty budget stops retrying, so a struggling provider sees fewer requests, not a
//! retry storm (the AWS SDK's standard mode works this way).
//!
//! **Decorrelated delays**: every client draws its jitter from its own random generator, seeded
//! from the operating system's entropy, and each call from a fresh seed of that generator. Many
//! clients hitting the same fault (many processes launching at once against one rate limit)
//! therefore spread their retries out instead of retrying in lockstep. To replay a run's
//! delays (a test failure that depends on them), set `GPUCLOUD_JITTER_SEED` to a number: each
//! client's generator then starts from it, and the seed in use is logged at `DEBUG`.
//!
//! Every retry is logged at `WARN` by `tracing` with the provider, operation, attempt and delay.

use crate::model::error::Error;
use backon::BackoffBuilder as _;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether an operation may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Reads, deletes, stop/start: sending twice does no harm.
    Idempotent,
    /// Creates: retried only when the request certainly was not processed.
    Create,
}

/// How failed requests are retried. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts per request, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Upper bound of the first retry's jittered delay.
    pub initial_backoff: Duration,
    /// Cap on any computed delay.
    pub max_backoff: Duration,
    /// Cap on a provider-requested `Retry-After`; a longer request fails the call instead.
    pub max_retry_after: Duration,
    /// Retry tokens per client.
    pub budget: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
            budget: 100,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// Tiny delays, for tests against local servers.
    pub fn fast() -> Self {
        Self {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
            ..Self::default()
        }
    }
}

const RETRY_COST: u32 = 5;
const TRANSPORT_RETRY_COST: u32 = 10;

/// Retry tokens shared by all calls of one client.
#[derive(Debug, Clone)]
pub(crate) struct RetryBudget {
    tokens: Arc<Mutex<u32>>,
    capacity: u32,
}

impl RetryBudget {
    pub(crate) fn new(capacity: u32) -> Self {
        Self { tokens: Arc::new(Mutex::new(capacity)), capacity }
    }

    fn withdraw(&self, cost: u32) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if *tokens >= cost {
            *tokens -= cost;
            true
        } else {
            false
        }
    }

    fn refund(&self, amount: u32) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        *tokens = (*tokens + amount).min(self.capacity);
    }
}

/// One client's source of jitter: its own generator, seeded from the process's entropy-seeded
/// generator (fastrand with `std`), that hands each call its own seed.
#[derive(Debug, Clone)]
pub(crate) struct JitterSource(Arc<Mutex<fastrand::Rng>>);

impl JitterSource {
    /// Seeded from `GPUCLOUD_JITTER_SEED` when it holds a number (to replay delays), else from
    /// entropy.
    pub(crate) fn from_entropy() -> Self {
        let seed = std::env::var("GPUCLOUD_JITTER_SEED").ok().and_then(|s| s.trim().parse::<u64>().ok());
        let rng = match seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        tracing::debug!(jitter_seed = ?seed, "retry jitter generator");
        Self(Arc::new(Mutex::new(rng)))
    }

    fn next_seed(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).u64(..)
    }
}

/// Counters of what one client's retry and reconciliation layers did, for reports and tests.
#[derive(Debug, Default)]
pub struct RetryStats {
    /// Requests sent again.
    pub retries: std::sync::atomic::AtomicU64,
    /// Ambiguous creates whose pod was found by listing.
    pub reconciled: std::sync::atomic::AtomicU64,
    /// Ambiguous creates whose pod could not be found ([`crate::Error::CreateUnconfirmed`]).
    pub unconfirmed: std::sync::atomic::AtomicU64,
}

/// The computed delays of one call: exponential from `initial_backoff`, each fully jittered
/// within `[delay, 2 x delay)`, capped at `max_backoff`, from a fresh seed of the client's source.
fn backoff(policy: &RetryPolicy, jitter: &JitterSource) -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(policy.initial_backoff)
        .with_max_delay(policy.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .with_jitter_seed(jitter.next_seed())
        .without_max_times()
        .build()
}

/// Runs `attempt` under `policy`. The one place requests are repeated.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    budget: &RetryBudget,
    jitter: &JitterSource,
    stats: &RetryStats,
    operation: &'static str,
    safety: Safety,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut delays = backoff(policy, jitter);
    let mut tried = 1;
    let mut spent = 0;
    loop {
        let error = match attempt().await {
            Ok(value) => {
                budget.refund(spent.max(1));
                return Ok(value);
            }
            Err(error) => error,
        };
        let allowed = match safety {
            Safety::Idempotent => error.is_retryable(),
            Safety::Create => error.certainly_not_processed(),
        };
        if !allowed || tried >= policy.max_attempts {
            return Err(error);
        }
        let delay = match error.retry_after() {
            Some(asked) if asked > policy.max_retry_after => return Err(error),
            Some(asked) => asked,
            None => delays.next().unwrap_or(policy.max_backoff),
        };
        let cost = if matches!(error, Error::Transport { .. }) { TRANSPORT_RETRY_COST } else { RETRY_COST };
        if !budget.withdraw(cost) {
            tracing::warn!(operation, %error, "retry budget exhausted; not retrying");
            return Err(error);
        }
        spent += cost;
        stats.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(operation, attempt = tried, delay_ms = delay.as_millis() as u64, %error, "retrying");
        tokio::time::sleep(delay).await;
        tried += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api(status: u16, retry_after: Option<Duration>) -> Error {
        Error::Api { provider: Provider::RunPod, operation: "op", status, message: String::new(), retry_after }
    }

    async fn run_with(safety: Safety, errors: Vec<Error>) -> (Result<u32, Error>, u32) {
        let calls = AtomicU32::new(0);
        let errors = Mutex::new(errors);
        let result = run(
            &RetryPolicy::fast(),
            &RetryBudget::new(100),
            &JitterSource::from_entropy(),
            &RetryStats::default(),
            "op",
            safety,
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                let next = errors.lock().unwrap().pop();
                async move { next.map_or(Ok(7), Err) }
            },
        )
        .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn reads_retry_5xx_then_succeed() {
        let (result, calls) = run_with(Safety::Idempotent, vec![api(503, None), api(500, None)]).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn creates_do_not_retry_ambiguous_failures() {
        let (result, calls) = run_with(Safety::Create, vec![api(500, None)]).await;
        assert_eq!(result.unwrap_err().status(), Some(500));
        assert_eq!(calls, 1);
        let (result, calls) = run_with(Safety::Create, vec![api(429, Some(Duration::from_millis(1)))]).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let (result, calls) = run_with(Safety::Idempotent, vec![api(404, None)]).await;
        assert!(result.unwrap_err().is_not_found());
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_exactly() {
        let start = tokio::time::Instant::now();
        let (result, _) = run_with(Safety::Idempotent, vec![api(429, Some(Duration::from_secs(3)))]).await;
        assert!(result.is_ok());
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test]
    async fn an_empty_budget_stops_retries() {
        let budget = RetryBudget::new(4);
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = run(
            &RetryPolicy::fast(),
            &budget,
            &JitterSource::from_entropy(),
            &RetryStats::default(),
            "op",
            Safety::Idempotent,
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(api(503, None)) }
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// The delays one call slept through, failing with 503 `failures` times, under paused time.
    async fn delays_of_one_call(jitter: &JitterSource, failures: u32) -> Vec<Duration> {
        let calls = AtomicU32::new(0);
        let slept = Mutex::new(Vec::new());
        let last = Mutex::new(tokio::time::Instant::now());
        let policy = RetryPolicy { max_attempts: failures + 1, ..RetryPolicy::default() };
        let result: Result<(), Error> =
            run(&policy, &RetryBudget::new(1000), jitter, &RetryStats::default(), "op", Safety::Idempotent, || {
                let now = tokio::time::Instant::now();
                let mut last = last.lock().unwrap();
                if calls.fetch_add(1, Ordering::SeqCst) > 0 {
                    slept.lock().unwrap().push(now - *last);
                }
                *last = now;
                let fail = calls.load(Ordering::SeqCst) <= failures;
                async move { if fail { Err(api(503, None)) } else { Ok(()) } }
            })
            .await;
        assert!(result.is_ok());
        slept.into_inner().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn independent_clients_do_not_retry_in_lockstep() {
        // The delays are read where they are computed, not measured as slept time: Tokio's timer
        // rounds a sleep up to the next millisecond, so a jittered 499.7 ms slept as 500 ms and
        // the range assertion failed about one run in four.
        let default = RetryPolicy::default();
        let first_delays: Vec<Duration> = (0..30)
            .map(|_| backoff(&default, &JitterSource::from_entropy()).next().expect("backoff is unbounded"))
            .collect();
        assert!(
            first_delays.iter().all(|d| *d >= default.initial_backoff && *d < default.initial_backoff * 2),
            "a first delay outside [initial, 2 x initial): {first_delays:?}"
        );
        let mut distinct = first_delays.clone();
        distinct.sort();
        distinct.dedup();
        // backon draws the jitter as an f32 in [0, 1): 2^24 equally likely values, each a distinct
        // nanosecond delay over 250 ms. Thirty independent draws collide at all with probability
        // about 435 / 2^24 (3e-5); six or more collisions (fewer than 25 distinct) is below 1e-20.
        // The defect this guards, clients sharing a seed, gives one distinct value.
        assert!(distinct.len() >= 25, "only {} distinct first delays of 30: {first_delays:?}", distinct.len());
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_calls_of_one_client_do_not_replay_the_same_delays() {
        let client = JitterSource::from_entropy();
        let first = delays_of_one_call(&client, 3).await;
        let second = delays_of_one_call(&client, 3).await;
        assert_eq!(first.len(), 3);
        assert_ne!(first, second);
    }
}
