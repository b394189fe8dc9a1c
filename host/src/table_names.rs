//! Event-log table names of format 7 (`@livestore/sync-cf`'s, which the Cloudflare home keeps):
//! its name for a store when nothing can share it, otherwise an encoded name no other id
//! produces. The worker implements the same rule (`schema/vectors.json` checks both); the
//! native server uses it only to find the tables of an older data file it migrates.

/// `@livestore/sync-cf`'s persistence format, part of every event-log table name.
pub const FORMAT_VERSION: i64 = 7;

/// The table name `@livestore/sync-cf` gives a store: every UTF-16 code unit that is not an
/// ASCII letter or digit becomes `_` (JavaScript's `replaceAll(/[^a-zA-Z0-9]/g, '_')`), so
/// `a-b`, `a_b` and `a b` share it, and SQLite, which compares identifiers without regard to
/// ASCII case, also treats `Abc` and `abc` as one table.
pub fn reference_table_name(store_id: &str) -> String {
    let mapped: String = store_id
        .encode_utf16()
        .map(|unit| match u8::try_from(unit) {
            Ok(b) if b.is_ascii_alphanumeric() => char::from(b),
            _ => '_',
        })
        .collect();
    format!("eventlog_{FORMAT_VERSION}_{mapped}")
}

/// A name no other store id produces and no reference name can equal (`-` is outside the
/// alphabet of `@livestore/sync-cf`'s names): the id's UTF-8 bytes in lowercase hex.
pub fn encoded_table_name(store_id: &str) -> String {
    let hex: String = store_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("eventlog_{FORMAT_VERSION}_x-{hex}")
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
