//! How every provider request is made: one generated-client call, error conversion, the retry
//! policy, and a `tracing` span. Both provisioners call through [`Caller::call`].

use crate::model::Provider;
use crate::model::error::{Error, Result};
use crate::transport::api_error::{CallSite, ProviderMessage};
use crate::transport::retry::{self, JitterSource, RetryBudget, RetryPolicy, RetryStats, Safety};
use progenitor_client::ResponseValue;
use secrecy::SecretString;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument as _;

/// Shared per-client state for making calls.
#[derive(Clone)]
pub(crate) struct Caller {
    pub provider: Provider,
    api_key: SecretString,
    policy: RetryPolicy,
    budget: RetryBudget,
    jitter: JitterSource,
    pacer: crate::transport::pace::Pacer,
    pub stats: Arc<RetryStats>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("provider", &self.provider).field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Caller {
    pub fn new(provider: Provider, api_key: SecretString, policy: RetryPolicy) -> Self {
        let budget = RetryBudget::new(policy.budget);
        Self {
            provider,
            api_key,
            policy,
            budget,
            jitter: JitterSource::from_entropy(),
            pacer: crate::transport::pace::Pacer::default(),
            stats: Arc::default(),
        }
    }

    pub fn set_policy(&mut self, policy: RetryPolicy) {
        self.budget = RetryBudget::new(policy.budget);
        self.policy = policy;
    }

    /// Runs `send` (one generated-client request) under the retry policy.
    pub async fn call<T, E, F, Fut>(&self, operation: &'static str, safety: Safety, send: F) -> Result<T>
    where
        E: ProviderMessage,
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<ResponseValue<T>, progenitor_client::Error<E>>>,
    {
        let site = CallSite { provider: self.provider, operation, api_key: &self.api_key };
        let span = tracing::debug_span!("gpucloud", provider = %self.provider, operation);
        // Actions may use the whole rate-limit window; reads leave room for them (`pace`).
        let actions = ["delete_pod", "delete_disk", "delete_network_volume", "pod_action", "update_pod"];
        let priority = if safety == Safety::Create || actions.contains(&operation) {
            crate::transport::pace::Priority::Action
        } else {
            crate::transport::pace::Priority::Read
        };
        retry::run(&self.policy, &self.budget, &self.jitter, &self.stats, operation, safety, || async {
            let number = self.pacer.admit(priority).await;
            match send().await {
                Ok(value) => {
                    self.pacer.observe(number, Some(value.headers()));
                    Ok(value.into_inner())
                }
                Err(e) => {
                    let headers = match &e {
                        progenitor_client::Error::ErrorResponse(response) => Some(response.headers()),
                        progenitor_client::Error::UnexpectedResponse(response) => Some(response.headers()),
                        _ => None,
                    };
                    self.pacer.observe(number, headers);
                    Err(site.convert(e).await)
                }
            }
        })
        .instrument(span)
        .await
    }

    /// Builds a generated-client type from JSON; a failure is a bug in the request we built, or
    /// input the document forbids, reported as invalid input on `field`.
    pub fn build<T: serde::de::DeserializeOwned>(&self, field: &'static str, value: serde_json::Value) -> Result<T> {
        serde_json::from_value(value)
            .map_err(|e| Error::invalid(field, format!("rejected by the {} API schema: {e}", self.provider)))
    }
}

/// Reads an API key from `variable`.
pub(crate) fn key_from_env(provider: Provider, variable: &'static str) -> Result<SecretString> {
    match std::env::var(variable) {
        Ok(key) if !key.trim().is_empty() => Ok(SecretString::from(key.trim().to_string())),
        _ => Err(Error::MissingCredentials { provider, variable }),
    }
}

/// The value of `variable`, if set and not blank.
pub(crate) fn nonempty_env(variable: &str) -> Option<String> {
    std::env::var(variable).ok().filter(|v| !v.trim().is_empty())
}

/// A delete's result, with "already gone" (404) counted as success: deletes are idempotent.
pub(crate) fn gone_is_ok<T>(result: Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A single read's result with "not found" as `None`.
pub(crate) fn gone_is_none<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
