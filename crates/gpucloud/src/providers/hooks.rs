//! Hooks the layers above register, so that nothing in this layer calls up into them.
//!
//! [`on_termination_confirmed`]: called with a pod's id each time a
//! [`Provisioner::terminate_and_confirm`](crate::Provisioner::terminate_and_confirm) confirms the
//! pod gone. The remote layer registers one that forgets the pod's host key and sync manifest
//! (`remote::forget_pod`, registered by `remote::forget_terminated_pods`).

use crate::model::PodId;
use std::sync::{Mutex, PoisonError};

/// A function run when a pod's termination is confirmed. It runs on the terminating task, so it
/// must be quick and must not block on I/O beyond local files.
pub type TerminationHook = fn(&PodId);

static TERMINATION_HOOKS: Mutex<Vec<TerminationHook>> = Mutex::new(Vec::new());

/// Registers `hook` for every confirmed termination in this process; registering the same
/// function twice is a no-op.
pub fn on_termination_confirmed(hook: TerminationHook) {
    let mut hooks = TERMINATION_HOOKS.lock().unwrap_or_else(PoisonError::into_inner);
    if !hooks.iter().any(|h| std::ptr::fn_addr_eq(*h, hook)) {
        hooks.push(hook);
    }
}

/// Runs every registered hook for `id`.
pub(crate) fn termination_confirmed(id: &PodId) {
    let hooks = TERMINATION_HOOKS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for hook in hooks {
        hook(id);
    }
}
