//! Finding out what an ambiguous create did, instead of sending it again.

use crate::model::Pod;
use crate::model::error::{Error, Result};
use crate::providers::provisioner::Provisioner;
use crate::transport::retry::RetryStats;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How hard [`Provisioner::create`] looks for the pod of an ambiguous create before giving up
/// with [`Error::CreateUnconfirmed`]. Lists can lag behind creates, hence several looks.
#[derive(Debug, Clone, Copy)]
pub struct ReconcilePolicy {
    /// How many times the pod list is searched.
    pub attempts: u32,
    /// Pause between searches.
    pub delay: Duration,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self { attempts: 4, delay: Duration::from_secs(2) }
    }
}

impl Error {
    /// Whether a create that failed this way may nevertheless have created a pod: the request
    /// may have been processed (timeout, dropped connection, 5xx, 408, unreadable success body).
    pub fn is_ambiguous_for_create(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 408 || *status >= 500,
            Error::Transport { maybe_sent, .. } => *maybe_sent,
            Error::Decode { .. } => true,
            _ => false,
        }
    }
}

/// After an ambiguous create failure, looks for the pod carrying `tag`.
pub(crate) async fn reconcile_create<P: Provisioner + ?Sized>(
    provisioner: &P,
    tag: &str,
    cause: Error,
    policy: ReconcilePolicy,
    stats: &RetryStats,
) -> Result<Pod> {
    tracing::warn!(provider = %provisioner.provider(), launch_tag = tag, error = %cause, "create outcome ambiguous; reconciling by listing pods");
    for attempt in 1..=policy.attempts.max(1) {
        match provisioner.find_by_launch_tag(tag).await {
            Ok(mut found) if !found.is_empty() => {
                tracing::info!(provider = %provisioner.provider(), launch_tag = tag, pod = %found[0].id, "create reconciled: the pod exists");
                stats.reconciled.fetch_add(1, Ordering::Relaxed);
                return Ok(found.swap_remove(0));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(launch_tag = tag, error = %e, "listing pods while reconciling failed"),
        }
        if attempt < policy.attempts {
            tokio::time::sleep(policy.delay).await;
        }
    }
    stats.unconfirmed.fetch_add(1, Ordering::Relaxed);
    Err(Error::CreateUnconfirmed {
        provider: provisioner.provider(),
        launch_tag: tag.to_string(),
        cause: Box::new(cause),
    })
}
