//! Server time as LiveStore writes it: `new Date().toISOString()`, millisecond precision, UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current wall-clock time in the reference's `createdAt` format.
pub fn now_iso() -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    iso_from_millis(millis)
}

pub fn iso_from_millis(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_javascript_to_iso_string() {
        assert_eq!(super::iso_from_millis(1_795_719_190_284), "2026-11-26T18:53:10.284Z");
        assert_eq!(super::iso_from_millis(0), "1970-01-01T00:00:00.000Z");
    }
}
