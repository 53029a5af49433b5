//! Exit codes and how an error is shown.

use crate::signals;
use gpucloud::Error;

/// `run`'s exit code when the job's pod could not be confirmed terminated (it may still be
/// billing), whatever the command's own status; documented in `gpucloud --help`.
pub(crate) const TERMINATION_UNCONFIRMED: u8 = 7;

/// The job's spot pod was interrupted and no recovery was allowed or left (`run`, `jobs wait`);
/// documented in `gpucloud --help`.
pub(crate) const INTERRUPTED: u8 = 8;

/// Exit code for an error; documented in `gpucloud --help`.
pub(crate) fn exit_code(error: &Error) -> u8 {
    match error {
        // A request the provider's document refuses (422) is bad input too, not missing capacity.
        // No SSH key: the request must change (--ssh-key, or --ready status).
        Error::InvalidInput { .. }
        | Error::RequestTooLarge { .. }
        | Error::NoSshKey { .. }
        | Error::Api { status: 422, .. } => 2,
        Error::MissingCredentials { .. } => 3,
        Error::Api { status: 401 | 403, .. } => 3,
        Error::NoCapacity { .. } | Error::HostFull { .. } => 4,
        Error::OverBudget { .. } | Error::BurnCapExceeded { .. } | Error::BurnUnknown { .. } => 6,
        Error::Timeout { .. } => 5,
        Error::Interrupted { .. } => INTERRUPTED,
        Error::TerminationUnconfirmed { .. } => TERMINATION_UNCONFIRMED,
        Error::Cancelled => signals::exit_code(),
        _ => 1,
    }
}

pub(crate) fn report(error: &Error) {
    eprintln!("gpucloud: error: {error}");
    if matches!(error, Error::MissingCredentials { .. }) {
        eprintln!(
            "hint: export PRIME_API_KEY=... and/or RUNPOD_API_KEY=..., or try the built-in emulator with --emulator"
        );
    }
}
