//! Exit codes and how an error is shown.

use crate::signals;
use gpucloud::Error;

/// `run`'s exit code when the job's pod could not be confirmed terminated (it may still be
/// billing), whatever the command's own status; documented in `gpucloud --help`.
pub(crate) const TERMINATION_UNCONFIRMED: u8 = 7;

/// The job's spot pod was interrupted and no recovery was allowed or left (`run`, `jobs wait`);
/// documented in `gpucloud --help`.
pub(crate) const INTERRUPTED: u8 = 8;

/// The exit code for a remote command's status: itself when it is one (0..=255), else 1 (a
/// status a shell cannot have, such as -1 from a pod's status file, is never success).
pub(crate) fn of_status(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn a_status_out_of_range_is_never_success() {
        assert_eq!(super::of_status(0), 0);
        assert_eq!(super::of_status(3), 3);
        assert_eq!(super::of_status(255), 255);
        assert_eq!(super::of_status(-1), 1);
        assert_eq!(super::of_status(256), 1);
    }
}
