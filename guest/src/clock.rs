//! Server time as LiveStore writes it: `new Date().toISOString()`, millisecond precision, UTC.

use crate::host::Host;
use chrono::{DateTime, SecondsFormat, Utc};

/// The host's wall-clock time in the `createdAt` format.
pub fn now_iso(host: &mut dyn Host) -> String {
    iso_from_millis(host.now_millis())
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
