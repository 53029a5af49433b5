//! What a launch must undo if it does not hand its pod back: the pods it created and the launch
//! tags of creates whose outcome was ambiguous. Awaited on every normal exit of a launch, and
//! spawned on the runtime when the launch's future is dropped.

use crate::model::PodId;
use crate::model::error::Result;
use crate::providers::provisioner::Provisioner;
use crate::providers::reconcile::ReconcilePolicy;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What to undo if a launch does not hand its pod back.
#[derive(Default)]
pub(super) struct Pending {
    pods: Vec<(Arc<dyn Provisioner>, PodId)>,
    tags: Vec<(Arc<dyn Provisioner>, String)>,
}

/// Cleans up a launch's leftovers: awaited on every normal exit, spawned when dropped.
pub(super) struct LaunchCleanup {
    pending: Arc<Mutex<Pending>>,
    timeout: Duration,
    sweep: ReconcilePolicy,
}

impl LaunchCleanup {
    pub(super) fn new(timeout: Duration, sweep: ReconcilePolicy) -> Self {
        Self { pending: Arc::default(), timeout, sweep }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn track_tag(&self, provisioner: &Arc<dyn Provisioner>, tag: &str) {
        self.lock().tags.push((Arc::clone(provisioner), tag.to_string()));
    }

    pub(super) fn track_pod(&self, provisioner: &Arc<dyn Provisioner>, id: &PodId) {
        self.lock().pods.push((Arc::clone(provisioner), id.clone()));
    }

    /// Stops tracking `tag`: its create was rejected outright, or its pod is tracked by id.
    pub(super) fn forget_tag(&self, tag: &str) {
        self.lock().tags.retain(|(_, t)| t != tag);
    }

    /// Stops tracking `id`, which is being handed to the caller (its tag is covered by the pod).
    pub(super) fn release(&self, id: &PodId, tag: &str) {
        let mut pending = self.lock();
        pending.pods.retain(|(_, p)| p != id);
        pending.tags.retain(|(_, t)| t != tag);
    }

    /// Terminates `id` now and stops tracking it.
    pub(super) async fn discard(&self, provisioner: &Arc<dyn Provisioner>, id: &PodId) -> Result<()> {
        let result = provisioner.terminate_and_confirm(id, Instant::now() + self.timeout).await;
        if result.is_ok() {
            self.lock().pods.retain(|(_, p)| p != id);
        }
        result
    }

    async fn run(pending: Pending, timeout: Duration, sweep: ReconcilePolicy) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut first_error = None;
        for (provisioner, id) in &pending.pods {
            tracing::warn!(pod = %id, "terminating a pod the launch is not handing back");
            if let Err(e) = provisioner.terminate_and_confirm(id, deadline).await {
                tracing::error!(pod = %id, error = %e, "cleanup could not confirm termination");
                first_error.get_or_insert(e);
            }
        }
        // Ambiguous creates: look for their tags (lists may lag), terminate anything found.
        for look in 1..=sweep.attempts.max(1) {
            for (provisioner, tag) in &pending.tags {
                match provisioner.find_by_launch_tag(tag).await {
                    Ok(found) => {
                        for pod in found {
                            tracing::warn!(pod = %pod.id, launch_tag = %tag, "terminating a pod created by an ambiguous attempt");
                            if let Err(e) = provisioner.terminate_and_confirm(&pod.id, deadline).await {
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(launch_tag = %tag, error = %e, "cleanup could not list pods");
                        first_error.get_or_insert(e);
                    }
                }
            }
            if pending.tags.is_empty() || look == sweep.attempts || Instant::now() + sweep.delay >= deadline {
                break;
            }
            tokio::time::sleep(sweep.delay).await;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs the cleanup now (normal exits).
    pub(super) async fn finish(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.lock());
        Self::run(pending, self.timeout, self.sweep).await
    }
}

impl Drop for LaunchCleanup {
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *self.lock());
        if pending.pods.is_empty() && pending.tags.is_empty() {
            return;
        }
        let (timeout, sweep) = (self.timeout, self.sweep);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                tracing::warn!(
                    pods = pending.pods.len(),
                    tags = pending.tags.len(),
                    "launch dropped; cleaning up in the background"
                );
                handle.spawn(async move {
                    let _ = Self::run(pending, timeout, sweep).await;
                });
            }
            Err(_) => tracing::error!(
                pods = ?pending.pods.iter().map(|(_, id)| id.to_string()).collect::<Vec<_>>(),
                "launch dropped outside a Tokio runtime: these pods may still be billing"
            ),
        }
    }
}
