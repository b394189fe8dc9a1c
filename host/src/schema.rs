//! SQL kept in files under `schema/`, each statement after a `-- name:` line:
//! `schema/native-sqlite.sql`, the native server's layout, and `schema/sqlite.sql`,
//! `@livestore/sync-cf`'s format 7, which the worker's build reads and from which a native data
//! directory of the older layout is migrated.

const SQL: &str = include_str!("../../schema/sqlite.sql");
const NATIVE: &str = include_str!("../../schema/native-sqlite.sql");

/// The statement (or statements) named `name` in `file`; panics on a name the file lacks, which
/// the tests below rule out for every name used.
fn named(file: &'static str, file_name: &str, name: &str) -> &'static str {
    let marker = format!("-- name: {name}\n");
    let start =
        file.find(&marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("schema/{file_name} has no {name}"));
    let rest = &file[start..];
    let end = rest.find("\n-- name: ").map_or(rest.len(), |i| i + 1);
    rest[..end].trim()
}

/// A statement of format 7 (`schema/sqlite.sql`).
pub fn statement(name: &str) -> &'static str {
    named(SQL, "sqlite.sql", name)
}

/// The native layout's tables and indexes (`schema/native-sqlite.sql`).
pub fn native_layout() -> &'static str {
    named(NATIVE, "native-sqlite.sql", "layout")
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

    #[test]
    fn the_native_layout_parses_and_can_be_created_twice() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(super::native_layout()).unwrap();
        conn.execute_batch(super::native_layout()).unwrap();
    }
}
