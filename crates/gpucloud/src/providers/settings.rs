//! The settings methods both provisioners share (retry policy, poll interval, readiness,
//! reconciliation), written once.

/// The settings methods both provisioners share; expects fields `caller: Caller`,
/// `poll_interval: Duration`, `reconcile: ReconcilePolicy` and `readiness: Readiness`.
macro_rules! client_settings {
    () => {
        /// Replaces the retry policy.
        pub fn with_retry_policy(mut self, policy: crate::transport::retry::RetryPolicy) -> Self {
            self.caller.set_policy(policy);
            self
        }

        /// Sets how often waits poll, clamped to
        /// [`MIN_POLL_INTERVAL`](crate::providers::provisioner::MIN_POLL_INTERVAL)..=[`MAX_POLL_INTERVAL`](crate::providers::provisioner::MAX_POLL_INTERVAL)
        /// (10 ms to 10 minutes): a zero interval would poll back to back and spend the
        /// provider's rate limit, a huge one would outlive any wait's deadline.
        pub fn with_poll_interval(mut self, interval: std::time::Duration) -> Self {
            self.poll_interval = interval.clamp(
                crate::providers::provisioner::MIN_POLL_INTERVAL,
                crate::providers::provisioner::MAX_POLL_INTERVAL,
            );
            self
        }

        /// Sets what [`Provisioner::wait_until_ready`](crate::Provisioner::wait_until_ready) waits
        /// for (default [`crate::Readiness::SshBanner`]: the SSH endpoint answers).
        pub fn with_readiness(mut self, readiness: crate::Readiness) -> Self {
            self.readiness = readiness;
            self
        }

        /// Sets how ambiguous creates are reconciled.
        pub fn with_reconcile_policy(mut self, policy: crate::providers::reconcile::ReconcilePolicy) -> Self {
            self.reconcile = policy;
            self
        }

        /// Retries performed so far by this client.
        pub fn retries(&self) -> u64 {
            self.caller.stats.retries.load(std::sync::atomic::Ordering::Relaxed)
        }

        /// What this client's retry and reconciliation layers have done (shared by its clones).
        pub fn stats(&self) -> &crate::transport::retry::RetryStats {
            &self.caller.stats
        }
    };
}

pub(crate) use client_settings;
