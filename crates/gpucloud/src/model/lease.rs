//! Leases: a pod's expiry, written into its name, so the provider's own pod list is the only state.
//!
//! Every pod gpucloud creates is named
//!
//! ```text
//! <name>-gc<tag>                      no lease
//! <name>-exp<YYYYMMDD>t<HHMMSS>z-gc<tag>   leased until that UTC second
//! ```
//!
//! `gc<tag>` is the launch tag (`gc` and 10 lowercase letters or digits, unique per create
//! attempt; see [`crate::LaunchSpec`]); `exp…z` is the lease's expiry in UTC, e.g.
//! `train-exp20261124t153005z-gcx7k2m9q4ab` is leased until 2026-11-24 15:30:05 UTC. Only
//! lowercase letters, digits and `-` are used, which every provider's name rules accept.
//!
//! Because the lease lives in the name, any process on any machine that holds the API key can
//! enforce it: [`crate::Fleet::reap`] lists the pods, parses their names, and terminates those
//! whose lease has expired. There is no local database to lose, and a pod outlives a killed
//! launcher (SIGKILL, a crash, a lost machine) by at most its lease plus the reaper's interval.
//!
//! Parsing never fails: a name that does not end in a launch tag is not a gpucloud pod and has
//! no lease ([`parse`] returns `None`), and a stamp that is not a real UTC time is not a lease.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::time::Duration;

/// Shortest lease accepted.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// Longest lease accepted (a larger value is almost certainly a unit mistake).
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Longest name (before the stamp and tag) a leased pod may have: the stamp takes 20 characters
/// and the tag 13, and neither document states a name limit, so gpucloud keeps every name it
/// sends within 64 characters, a common limit that the emulator enforces for PrimeIntellect.
pub const MAX_LEASED_NAME_LEN: usize = 64 - STAMP_LEN - TAG_SUFFIX_LEN;
const STAMP_LEN: usize = "-exp20261124t153005z".len();
const TAG_SUFFIX_LEN: usize = "-gc0123456789".len();
const TAG_PREFIX: &str = "gc";
const TAG_LEN: usize = 10;
const STAMP_PREFIX: &str = "exp";
const STAMP_FORMAT: &str = "%Y%m%dt%H%M%Sz";

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The first character of the tag of a pod the idle rule leaves alone ([`is_idle_exempt_tag`]).
const IDLE_EXEMPT_MARK: char = 'k';

/// A fresh, unique launch tag: `gc` and 10 random lowercase letters or digits, the first of
/// them never `k` (that marks [`new_idle_exempt_launch_tag`]'s tags).
pub fn new_launch_tag() -> String {
    let first = loop {
        let c = ALPHABET[fastrand::usize(..ALPHABET.len())] as char;
        if c != IDLE_EXEMPT_MARK {
            break c;
        }
    };
    let rest: String = (1..TAG_LEN).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect();
    format!("{TAG_PREFIX}{first}{rest}")
}

/// A fresh launch tag that also marks the pod as exempt from the idle rule: `gck` and 9 random
/// lowercase letters or digits (`train-gckq81mz0a2c`).
///
/// The mark lives in the name, like the lease, so every reaper anywhere sees it in the
/// provider's pod list with no other state, and it has the shape of any launch tag, so older
/// gpucloud versions still find the pod by its tag and still enforce its lease. A pod launched
/// by an older version whose random tag began with `k` reads as exempt: the safe direction (an
/// idle pod is left running until its lease, never a busy one terminated).
pub fn new_idle_exempt_launch_tag() -> String {
    let rest: String = (1..TAG_LEN).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect();
    format!("{TAG_PREFIX}{IDLE_EXEMPT_MARK}{rest}")
}

/// Whether a launch tag marks its pod as exempt from the idle rule ([`new_idle_exempt_launch_tag`]).
pub fn is_idle_exempt_tag(tag: &str) -> bool {
    is_launch_tag(tag) && tag[TAG_PREFIX.len()..].starts_with(IDLE_EXEMPT_MARK)
}

/// Whether `text` has the shape of a launch tag.
pub fn is_launch_tag(text: &str) -> bool {
    text.len() == TAG_PREFIX.len() + TAG_LEN
        && text.starts_with(TAG_PREFIX)
        && text[TAG_PREFIX.len()..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The parts of a gpucloud pod name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts<'a> {
    /// The name the caller chose.
    pub base: &'a str,
    /// When the lease expires, if the pod has one.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The launch tag (`gc…`).
    pub launch_tag: &'a str,
}

/// The name a pod is created with: `base`, the lease stamp if any, the launch tag.
pub fn compose(base: &str, lease_expires_at: Option<DateTime<Utc>>, launch_tag: &str) -> String {
    match lease_expires_at {
        Some(expiry) => format!("{base}-{}-{launch_tag}", stamp(expiry)),
        None => format!("{base}-{launch_tag}"),
    }
}

/// Splits a pod name into its parts; `None` when it carries no launch tag (not a gpucloud pod).
pub fn parse(name: &str) -> Option<NameParts<'_>> {
    let (rest, tag) = name.rsplit_once('-')?;
    if !is_launch_tag(tag) || rest.is_empty() {
        return None;
    }
    let stamped = rest.rsplit_once('-').and_then(|(base, stamp)| Some((base, parse_stamp(stamp)?)));
    Some(match stamped {
        Some((base, expiry)) if !base.is_empty() => NameParts { base, lease_expires_at: Some(expiry), launch_tag: tag },
        _ => NameParts { base: rest, lease_expires_at: None, launch_tag: tag },
    })
}

/// The launch tag and lease expiry of a pod named `name` (each `None` when absent), as owned
/// values for [`crate::Pod`].
pub(crate) fn tag_and_expiry(name: &str) -> (Option<String>, Option<DateTime<Utc>>) {
    parse(name).map_or((None, None), |p| (Some(p.launch_tag.to_string()), p.lease_expires_at))
}

/// When the lease of a pod named `name` expires; `None` for pods without one.
pub fn expires_at(name: &str) -> Option<DateTime<Utc>> {
    parse(name)?.lease_expires_at
}

/// The expiry of a lease of `ttl` starting `now`, rounded up to the whole second the name records.
pub fn expiry_after(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let end = now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let whole = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(whole, 0).unwrap_or(end)
}

/// Checks a time to live against [`MIN_TTL`]..=[`MAX_TTL`].
pub fn check_ttl(ttl: Duration) -> crate::Result<()> {
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(crate::Error::invalid(
            "ttl",
            format!("{} s is outside the allowed 1 s to 366 days", ttl.as_secs_f64()),
        ));
    }
    Ok(())
}

/// The same name with its lease set to `lease_expires_at`; `None` when `name` is not a
/// gpucloud pod name (it has no launch tag to keep).
pub fn restamp(name: &str, lease_expires_at: DateTime<Utc>) -> Option<String> {
    let parts = parse(name)?;
    Some(compose(parts.base, Some(lease_expires_at), parts.launch_tag))
}

fn stamp(expiry: DateTime<Utc>) -> String {
    format!("{STAMP_PREFIX}{}", expiry.format(STAMP_FORMAT))
}

fn parse_stamp(text: &str) -> Option<DateTime<Utc>> {
    let digits = text.strip_prefix(STAMP_PREFIX)?;
    // Exactly `YYYYMMDDtHHMMSSz`: chrono alone would accept fewer digits.
    let shape_ok = digits.len() == 16
        && digits.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b't',
            15 => b == b'z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDateTime::parse_from_str(digits, STAMP_FORMAT).ok().map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_idle_exempt_tag_is_a_launch_tag_and_no_other_tag_is_exempt() {
        for _ in 0..500 {
            let (plain, exempt) = (new_launch_tag(), new_idle_exempt_launch_tag());
            assert!(is_launch_tag(&plain) && !is_idle_exempt_tag(&plain), "{plain}");
            assert!(is_launch_tag(&exempt) && is_idle_exempt_tag(&exempt), "{exempt}");
        }
        let name = compose("train", None, "gckq81mz0a2c");
        assert_eq!(parse(&name).map(|p| p.launch_tag), Some("gckq81mz0a2c"), "an exempt pod is still ours");
        assert!(!is_idle_exempt_tag("gck"), "not a tag at all");
    }

    #[test]
    fn names_round_trip_with_and_without_a_lease() {
        let expiry = at("2026-11-24T15:30:05Z");
        let name = compose("train", Some(expiry), "gcx7k2m9q4ab");
        assert_eq!(name, "train-exp20261124t153005z-gcx7k2m9q4ab");
        let parts = parse(&name).unwrap();
        assert_eq!(parts, NameParts { base: "train", lease_expires_at: Some(expiry), launch_tag: "gcx7k2m9q4ab" });
        let plain = compose("my-pod.v2", None, "gc0123456789");
        assert_eq!(
            parse(&plain).unwrap(),
            NameParts { base: "my-pod.v2", lease_expires_at: None, launch_tag: "gc0123456789" }
        );
        assert_eq!(restamp(&plain, expiry).unwrap(), "my-pod.v2-exp20261124t153005z-gc0123456789");
        assert_eq!(restamp(&name, at("2027-01-01T00:00:00Z")).unwrap(), "train-exp20270101t000000z-gcx7k2m9q4ab");
    }

    #[test]
    fn foreign_and_malformed_names_have_no_lease_and_never_fail() {
        for name in [
            "",
            "-",
            "my-pod",
            "exp20261124t153005z",
            "train-exp20261124t153005z",
            "train-gcTOOSHORT",
            "train-gcABCDEFGHIJ",
            "-gc0123456789",
            "train-gc0123456789x",
            "ünïcödé-gc0123456789-",
        ] {
            assert_eq!(expires_at(name), None, "{name:?}");
        }
        // A stamp that is no real time is part of the base name, not a lease.
        for stamp in ["exp20261324t153005z", "exp2026112t1530050z", "exp20261124t153005", "exp20261124x153005z"] {
            let name = format!("train-{stamp}-gc0123456789");
            let parts = parse(&name).unwrap();
            assert_eq!(parts.lease_expires_at, None, "{name}");
            assert_eq!(parts.base, format!("train-{stamp}"));
        }
    }

    #[test]
    fn expiry_rounds_up_to_the_second_the_name_can_hold() {
        let now = at("2026-11-24T15:30:04.200Z");
        assert_eq!(expiry_after(now, Duration::from_secs(5)), at("2026-11-24T15:30:10Z"));
        assert_eq!(expiry_after(at("2026-11-24T15:30:04Z"), Duration::from_secs(5)), at("2026-11-24T15:30:09Z"));
        assert!(check_ttl(Duration::ZERO).is_err());
        assert!(check_ttl(Duration::from_secs(400 * 86_400)).unwrap_err().to_string().contains("ttl"));
        assert!(check_ttl(Duration::from_secs(8 * 3600)).is_ok());
        let longest = compose(&"n".repeat(MAX_LEASED_NAME_LEN), Some(at("2026-11-24T15:30:05Z")), "gc0123456789");
        assert_eq!(longest.len(), 64);
    }

    #[test]
    fn launch_tags_have_the_documented_shape() {
        let tag = new_launch_tag();
        assert!(is_launch_tag(&tag), "{tag}");
        assert_ne!(tag, new_launch_tag());
    }
}
