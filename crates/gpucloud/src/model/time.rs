//! Lenient timestamps: RFC 3339, PrimeIntellect's offset-less `2025-11-07T21:07:15.183000`
//! (read as UTC), and Go's `2024-07-12 19:14:40.144 +0000 UTC`.

use chrono::{DateTime, NaiveDateTime, Utc};

/// The current time in UTC.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The current time, RFC 3339 to the second (`2026-11-24T15:30:05Z`).
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parses the timestamp forms the providers send; `None` for anything else.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    let go = text.trim_end_matches(" UTC");
    DateTime::parse_from_str(go, "%Y-%m-%d %H:%M:%S%.f %z").ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;

    #[test]
    fn every_provider_form_parses() {
        let expected = "2025-11-07T21:07:15.183Z";
        for text in [
            "2025-11-07T21:07:15.183000",
            "2025-11-07T21:07:15.183Z",
            "2025-11-07T22:07:15.183+01:00",
            "2025-11-07 21:07:15.183 +0000 UTC",
        ] {
            let t = parse_timestamp(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), expected, "{text}");
        }
        assert!(parse_timestamp("yesterday").is_none());
    }
}
