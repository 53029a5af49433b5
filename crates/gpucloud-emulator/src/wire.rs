//! Helpers every handler uses to read a request and write an answer; they import nothing else
//! of the crate.

use serde::Serialize;

/// Checks that `value` decodes as the generated type `T`, so the emulator only sends what the
/// provider's document describes, and returns it **unchanged**: every build serves the same
/// bytes (camelCase keys and explicit nulls as the real APIs send them), so tests see what users
/// of `gpucloud emulator` get. Debug builds (every test) check and fail loudly; release builds
/// (benchmarks, `gpucloud emulator`) skip the check.
pub(crate) fn wire<T: serde::de::DeserializeOwned + Serialize>(value: serde_json::Value) -> serde_json::Value {
    if !cfg!(debug_assertions) {
        return value;
    }
    match serde_json::from_value::<T>(value.clone()) {
        Ok(_) => value,
        Err(e) => {
            // A bug in the emulator: fail loudly in tests rather than serve an off-spec body.
            debug_assert!(false, "emulator response does not match {}: {e}", std::any::type_name::<T>());
            tracing::error!(type_name = std::any::type_name::<T>(), error = %e, "emulator response does not match the API document");
            value
        }
    }
}

/// Query pairs in order, repeated keys kept (`regions=a&regions=b`).
pub(crate) fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}
