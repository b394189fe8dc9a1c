//! The SQL both homes share, from `schema/sqlite.sql` (the worker's build reads the same file):
//! each statement follows a `-- name:` line.

const SQL: &str = include_str!("../../schema/sqlite.sql");

/// The statement (or statements) named `name`; panics on a name the file lacks, which the
/// tests below rule out for every name used.
pub fn statement(name: &str) -> &'static str {
    let marker = format!("-- name: {name}\n");
    let start =
        SQL.find(&marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("schema/sqlite.sql has no {name}"));
    let rest = &SQL[start..];
    let end = rest.find("\n-- name: ").map_or(rest.len(), |i| i + 1);
    rest[..end].trim()
}

/// The metadata tables and indexes.
pub fn metadata() -> &'static str {
    statement("metadata")
}

/// The event-log table DDL for a quoted table name.
pub fn event_log_table(quoted: &str) -> String {
    statement("event_log_table").replace("{table}", quoted)
}

/// The one-statement claim of a table name (see the file).
pub fn claim_table() -> &'static str {
    statement("claim_table")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_statement_is_there_and_parses() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(super::metadata()).unwrap();
        conn.execute_batch(&super::event_log_table("\"eventlog_7_t\"")).unwrap();
        let claimed = conn.execute(super::claim_table(), rusqlite::params!["t", "eventlog_7_u", 0]).unwrap();
        assert_eq!(claimed, 1);
        let again = conn.execute(super::claim_table(), rusqlite::params!["t2", "EVENTLOG_7_U", 0]).unwrap();
        assert_eq!(again, 0, "a name is claimed once, whatever its ASCII case");
        let existing = conn.execute(super::claim_table(), rusqlite::params!["t3", "EVENTLOG_7_T", 0]).unwrap();
        assert_eq!(existing, 0, "an unclaimed table of that name blocks the claim");
        let own = conn.execute(super::claim_table(), rusqlite::params!["t4", "eventlog_7_t", 1]).unwrap();
        assert_eq!(own, 1, "unless the store wrote it");
    }
}
