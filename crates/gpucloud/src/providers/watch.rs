//! Coalesced status watching: every wait on one client's pods shares one status sweep per poll
//! interval, so waiting on 200 pods costs what waiting on one does.
//!
//! [`Provisioner::wait_until_ready`](crate::Provisioner::wait_until_ready),
//! [`Provisioner::terminate_and_confirm`](crate::Provisioner::terminate_and_confirm) and so
//! [`crate::Fleet::launch`], its cleanup and [`crate::Fleet::reap`] read pod states through
//! [`Provisioner::observe`](crate::Provisioner::observe). The built-in clients answer it from a
//! watcher:
//!
//! - **One sweep per interval.** While anyone waits, a background task reads the state of every
//!   pod waited on, then sleeps one poll interval; every waiter gets its pod from the next sweep
//!   that covers it. RunPod sweeps with one `GET /v2/pods` (the account's pods, unpaginated);
//!   PrimeIntellect with `GET /api/v1/pods/status?pod_ids=...`, split only when the query would
//!   pass [`MAX_STATUS_QUERY_BYTES`]. A lone waiter reads its pod directly (one request either way,
//!   and the smaller answer).
//! - **Single reads only for what the sweep misses**: a pod the list does not show yet (lists lag
//!   behind creates) or no longer shows (terminated) is read alone, to tell which; so is a
//!   PrimeIntellect pod this client has never seen in full (the status answer carries no name,
//!   GPU or price: pods this client created are known from the create's answer).
//! - **Starts and stops with its waiters**: the task starts with the first waiter and ends one
//!   interval after the last one leaves; it holds no pod and sends nothing once nobody waits.
//! - **Failures reach every waiter**: a sweep request is retried per the client's
//!   [`crate::RetryPolicy`] (and paced, [`crate::transport::pace`], as a read: creates and terminates go
//!   first); if it still fails, every waiter it covered gets the error, and decides for itself
//!   (a readiness wait ends with it; a terminate confirmation keeps trying until its deadline).
//!
//! A watcher belongs to one client and its clones: a [`crate::Fleet`] (and the CLI) holds one
//! client per provider, so one watcher per provider per process.

use crate::model::error::{Error, Result};
use crate::model::{Pod, PodId};
use futures::StreamExt as _;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Longest `pod_ids=...` query one PrimeIntellect status request carries; longer id lists are
/// split. RFC 9110 asks servers to accept request lines of at least 8,000 octets; this leaves
/// room for the path and for proxies in between.
pub const MAX_STATUS_QUERY_BYTES: usize = 6_000;

/// Single reads a sweep makes at once for pods its batch did not return.
const SINGLE_READS_AT_ONCE: usize = 8;

/// Where a watcher reads states from: one provider client.
#[async_trait::async_trait]
pub(crate) trait StatusSource: crate::Provisioner + Clone + 'static {
    /// The states of (some of) `ids` in as few requests as the provider allows. Pods it does
    /// not return are read alone with [`StatusSource::single`].
    async fn batch(&self, ids: &[PodId]) -> Result<Vec<Pod>>;

    /// One pod's state; `None` when the provider no longer has it.
    async fn single(&self, id: &PodId) -> Result<Option<Pod>> {
        crate::transport::caller::gone_is_none(self.get(id).await)
    }
}

/// What one sweep saw of each pod it covered.
#[derive(Default)]
struct Sweep {
    /// Counts sweeps; a waiter takes only sweeps newer than the one current when it arrived.
    number: u64,
    seen: HashMap<PodId, Result<Option<Pod>>>,
}

/// Who waits on one pod.
#[derive(Default)]
struct Interest {
    waiters: usize,
    /// Sweeps that covered the pod since a waiter last took an answer. A waiter parked in
    /// [`Watcher::observe`] takes each one at once, so several in a row mean its waiters were
    /// abandoned without being dropped (a leaked future), and the pod stops being swept; a
    /// waiter that was only starved of CPU that long comes back ([`Watcher::observe`]).
    untaken: u32,
}

/// Untaken sweeps after which a pod's waiters count as abandoned.
const UNTAKEN_SWEEPS_BEFORE_DROPPING: u32 = 3;

#[derive(Default)]
struct Waiters {
    wanted: HashMap<PodId, Interest>,
    /// Whether a sweeping task is alive.
    sweeping: bool,
}

struct Shared {
    waiters: Mutex<Waiters>,
    sweeps: watch::Sender<Arc<Sweep>>,
}

impl Shared {
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The coalescing watcher of one client (shared by its clones).
#[derive(Clone)]
pub(crate) struct Watcher {
    shared: Arc<Shared>,
}

impl Default for Watcher {
    fn default() -> Self {
        let (sweeps, _) = watch::channel(Arc::new(Sweep::default()));
        Self { shared: Arc::new(Shared { waiters: Mutex::default(), sweeps }) }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiters = self.shared.waiters();
        f.debug_struct("Watcher").field("pods", &waiters.wanted.len()).field("sweeping", &waiters.sweeping).finish()
    }
}

/// Unregisters a waiter however its wait ends (answered, timed out, cancelled).
struct Registration<'a> {
    shared: &'a Shared,
    id: &'a PodId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut waiters = self.shared.waiters();
        if let Some(interest) = waiters.wanted.get_mut(self.id) {
            interest.waiters = interest.waiters.saturating_sub(1);
            if interest.waiters == 0 {
                waiters.wanted.remove(self.id);
            }
        }
    }
}

impl Watcher {
    /// The pod's state from the next sweep that covers it (at most about one `interval` away);
    /// `None` when the provider no longer has the pod.
    pub async fn observe<S: StatusSource>(&self, source: &S, id: &PodId, interval: Duration) -> Result<Option<Pod>> {
        let (mut sweeps, after) = {
            // Lock order, everywhere: the waiters, then the sweeps channel.
            let mut waiters = self.shared.waiters();
            self.join(&mut waiters, source, id, interval);
            let sweeps = self.shared.sweeps.subscribe();
            let after = sweeps.borrow().number;
            (sweeps, after)
        };
        let _registration = Registration { shared: &self.shared, id };
        loop {
            let answer = {
                let sweep = sweeps.borrow_and_update();
                (sweep.number > after).then(|| sweep.seen.get(id).cloned()).flatten()
            };
            {
                let mut waiters = self.shared.waiters();
                match answer {
                    Some(answer) => {
                        if let Some(interest) = waiters.wanted.get_mut(id) {
                            interest.untaken = 0;
                        }
                        return answer;
                    }
                    // Starved long enough to be taken for abandoned: wait on the pod again.
                    None if !waiters.wanted.contains_key(id) => self.join(&mut waiters, source, id, interval),
                    None => {}
                }
            }
            if sweeps.changed().await.is_err() {
                // Unreachable while `self` lives (it owns the sender); kept as an error, not a panic.
                return Err(stopped());
            }
        }
    }

    /// Counts one more waiter on `id`, and starts sweeping if nobody was.
    fn join<S: StatusSource>(&self, waiters: &mut Waiters, source: &S, id: &PodId, interval: Duration) {
        waiters.wanted.entry(id.clone()).or_default().waiters += 1;
        if !waiters.sweeping {
            waiters.sweeping = true;
            tokio::spawn(sweep_while_waited_on(Arc::clone(&self.shared), source.clone(), interval));
        }
    }
}

fn stopped() -> Error {
    Error::Timeout { what: "the status watcher, which stopped".into(), waited: Duration::ZERO }
}

/// Ends the sweeping task's tenure however it ends; if it ends while pods are still waited on
/// (a panic, or the runtime shutting down), those waiters are told instead of left hanging.
struct Tenure(Arc<Shared>);

impl Drop for Tenure {
    fn drop(&mut self) {
        let mut waiters = self.0.waiters();
        if !waiters.sweeping {
            return; // ended normally
        }
        waiters.sweeping = false;
        let seen = waiters.wanted.keys().map(|id| (id.clone(), Err(stopped()))).collect();
        let number = self.0.sweeps.borrow().number + 1;
        self.0.sweeps.send_replace(Arc::new(Sweep { number, seen }));
    }
}

async fn sweep_while_waited_on<S: StatusSource>(shared: Arc<Shared>, source: S, interval: Duration) {
    let tenure = Tenure(shared);
    loop {
        let ids: Vec<PodId> = {
            let mut waiters = tenure.0.waiters();
            if waiters.wanted.is_empty() {
                waiters.sweeping = false;
                return;
            }
            waiters.wanted.keys().cloned().collect()
        };
        tracing::debug!(pods = ids.len(), "status sweep");
        let seen = sweep(&source, &ids).await;
        {
            let mut waiters = tenure.0.waiters();
            let number = tenure.0.sweeps.borrow().number + 1;
            tenure.0.sweeps.send_replace(Arc::new(Sweep { number, seen }));
            for id in &ids {
                let Some(interest) = waiters.wanted.get_mut(id) else { continue };
                interest.untaken += 1;
                if interest.untaken > UNTAKEN_SWEEPS_BEFORE_DROPPING {
                    tracing::debug!(pod = %id, "nobody takes this pod's states any more; no longer swept");
                    waiters.wanted.remove(id);
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// One sweep: the batch, then single reads for what it did not return.
async fn sweep<S: StatusSource>(source: &S, ids: &[PodId]) -> HashMap<PodId, Result<Option<Pod>>> {
    let mut seen: HashMap<PodId, Result<Option<Pod>>> = HashMap::with_capacity(ids.len());
    if ids.len() > 1 {
        match source.batch(ids).await {
            Ok(pods) => {
                let wanted: HashSet<&PodId> = ids.iter().collect();
                for pod in pods.into_iter().filter(|pod| wanted.contains(&pod.id)) {
                    seen.insert(pod.id.clone(), Ok(Some(pod)));
                }
            }
            Err(error) => return ids.iter().map(|id| (id.clone(), Err(error.clone()))).collect(),
        }
    }
    let missing: Vec<PodId> = ids.iter().filter(|id| !seen.contains_key(*id)).cloned().collect();
    let singles: Vec<(PodId, Result<Option<Pod>>)> = futures::stream::iter(missing)
        .map(|id| async move {
            let pod = source.single(&id).await;
            (id, pod)
        })
        .buffer_unordered(SINGLE_READS_AT_ONCE)
        .collect()
        .await;
    seen.extend(singles);
    seen
}

/// Splits `ids` into groups whose `pod_ids=<id>&...` query fits [`MAX_STATUS_QUERY_BYTES`].
pub(crate) fn status_query_chunks(ids: &[&str]) -> Vec<Vec<String>> {
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut length = 0;
    for id in ids {
        // `pod_ids=` + the id (percent-encoded, at worst threefold) + `&`.
        let unreserved = id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        let encoded = if unreserved { id.len() } else { id.len() * 3 };
        let cost = "pod_ids=".len() + encoded + 1;
        match chunks.last_mut() {
            Some(chunk) if length + cost <= MAX_STATUS_QUERY_BYTES => {
                chunk.push(id.to_string());
                length += cost;
            }
            _ => {
                chunks.push(vec![id.to_string()]);
                length = cost;
            }
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_queries_split_only_when_too_long() {
        let ids: Vec<String> = (0..300).map(|i| format!("{i:032x}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let chunks = status_query_chunks(&refs);
        // 41 bytes per 32-character id: 146 fit in 6,000.
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [146, 146, 8]);
        assert_eq!(chunks.concat(), ids);
        assert_eq!(status_query_chunks(&refs[..100]).len(), 1);
        assert!(status_query_chunks(&[]).is_empty());
    }
}
