//! Operator actions on the data file: list and inspect stores, export and import logs, reset.
//! Used by the CLI (offline) and by the admin endpoints (through the store's owner).

pub use crate::storage::StoreInfo;
use crate::storage::{Row, Storage};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The largest seqNum a LiveStore client holds exactly (`Number.MAX_SAFE_INTEGER`); the sync
/// component refuses pushes past it.
pub const MAX_SEQ_NUM: i64 = (1 << 53) - 1;

/// `2026-11-28T05:18:53.123Z`, `2026-11-28T06:18:53+01:00`: what `createdAt` must look like
/// (it is compared as text by time-based pulls, so garbage would break them silently).
fn is_rfc3339(s: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$",
        )
        .expect("a valid pattern")
    });
    re.is_match(s)
}

/// The first line of an export: which store, and the backend id its clients hold, so that an
/// import can restore the store without sending every client through a reset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportHeader {
    /// The export format's version (1); also what tells a header line from an event.
    pub livestore_sync_export: u32,
    pub store_id: String,
    pub backend_id: String,
    pub head: i64,
    pub events: i64,
}

impl ExportHeader {
    pub fn of(info: &StoreInfo) -> ExportHeader {
        ExportHeader {
            livestore_sync_export: 1,
            store_id: info.store_id.clone(),
            backend_id: info.backend_id.clone(),
            head: info.head,
            events: info.event_count,
        }
    }

    /// The header, if `line` is one.
    pub fn parse(line: &str) -> Option<ExportHeader> {
        serde_json::from_str(line).ok()
    }
}

/// One exported event: a JSON line. `args` stays the exact JSON text that was pushed (no
/// re-encoding: numbers past f64 precision and any depth of nesting survive export → import
/// byte for byte).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedEvent {
    pub seq_num: i64,
    pub parent_seq_num: i64,
    pub name: String,
    #[serde(default)]
    pub args: Option<Box<RawValue>>,
    pub created_at: String,
    pub client_id: String,
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl ExportedEvent {
    pub fn from_row(r: Row) -> Result<ExportedEvent> {
        let args = match r.args {
            None => None,
            Some(text) => Some(RawValue::from_string(text).with_context(|| {
                format!("event {}: the stored args are not JSON (edited outside the server?)", r.seq_num)
            })?),
        };
        Ok(ExportedEvent {
            seq_num: r.seq_num,
            parent_seq_num: r.parent_seq_num,
            name: r.name,
            args,
            created_at: r.created_at,
            client_id: r.client_id,
            session_id: r.session_id,
            event_id: r.event_id,
        })
    }

    fn into_row(self) -> Row {
        Row {
            seq_num: self.seq_num,
            parent_seq_num: self.parent_seq_num,
            name: self.name,
            args: self.args.map(|a| String::from(Box::<str>::from(a))),
            created_at: self.created_at,
            client_id: self.client_id,
            session_id: self.session_id,
            event_id: self.event_id,
        }
    }
}

/// Call `each` with every event of a store in seqNum order, a page at a time.
pub fn export(db: &mut dyn Storage, store_id: &str, mut each: impl FnMut(ExportedEvent) -> Result<()>) -> Result<u64> {
    if db.store_info(store_id)?.is_none() {
        bail!("store {store_id:?} does not exist");
    }
    let mut cursor = 0;
    let mut n = 0;
    loop {
        let rows = db.read_after(store_id, cursor, 1000)?;
        let Some(last) = rows.last() else { break };
        cursor = last.seq_num;
        for row in rows {
            each(ExportedEvent::from_row(row)?)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Replace a store's log with `events` and give it `backend_id`, in one transaction that
/// streams: events are checked and written as they are read (nothing is kept in memory),
/// `progress` is called with the count so far, and any bad event rolls everything back. The
/// events must form a chain from ROOT (seqNum > 0, each `parentSeqNum` the previous
/// `seqNum`) with RFC 3339 `createdAt`s. A store that has events is refused unless
/// `replace`. The caller chooses the backend id: a replaced history never silently keeps
/// the old one.
pub fn import(
    db: &mut dyn Storage,
    store_id: &str,
    events: impl IntoIterator<Item = Result<(usize, ExportedEvent)>>,
    replace: bool,
    backend_id: &str,
    progress: impl FnMut(u64),
) -> Result<u64> {
    import_checked(db, store_id, events, replace, backend_id, progress, |_| Ok(()))
}

/// [`import`], with `before_commit` (given the number of events) able to refuse the import
/// after every event was read and before anything commits.
pub fn import_checked(
    db: &mut dyn Storage,
    store_id: &str,
    events: impl IntoIterator<Item = Result<(usize, ExportedEvent)>>,
    replace: bool,
    backend_id: &str,
    mut progress: impl FnMut(u64),
    mut before_commit: impl FnMut(u64) -> Result<()>,
) -> Result<u64> {
    let mut prev = 0;
    let mut n = 0u64;
    let mut checked = events.into_iter().map(|event| {
        let (line, e) = event?;
        if e.seq_num > MAX_SEQ_NUM {
            bail!("line {line}: seqNum {} is past {MAX_SEQ_NUM}, the largest a LiveStore client can hold", e.seq_num);
        }
        if e.parent_seq_num != prev || e.seq_num <= prev {
            bail!(
                "line {line}: event seqNum {} with parentSeqNum {} does not continue the chain at {prev}",
                e.seq_num,
                e.parent_seq_num
            );
        }
        if !is_rfc3339(&e.created_at) {
            bail!("line {line}: createdAt {:?} is not an RFC 3339 timestamp", e.created_at);
        }
        prev = e.seq_num;
        n += 1;
        if n.is_multiple_of(1000) {
            progress(n);
        }
        Ok(e.into_row())
    });
    let written = db.replace_log(store_id, backend_id, replace, &mut checked, &mut before_commit)?;
    drop(checked);
    progress(written);
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_import_line_longer_than_the_cap_is_refused_without_reading_it_all() {
        let mut data = vec![b'x'; MAX_IMPORT_LINE_BYTES + 10];
        data.push(b'\n');
        let mut lines = capped_lines(std::io::Cursor::new(data));
        let err = lines.next().and_then(|l| l.err()).map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 1 is longer than"), "{err}");
        let mut ok = capped_lines(std::io::Cursor::new(b"a\r\n\nb".to_vec()));
        assert_eq!(ok.next().and_then(|l| l.ok()).as_deref(), Some("a"));
        assert_eq!(ok.next().and_then(|l| l.ok()).as_deref(), Some(""));
        assert_eq!(ok.next().and_then(|l| l.ok()).as_deref(), Some("b"));
    }

    use super::*;
    use crate::storage::sqlite::SqliteDb;
    use crate::storage::Durability;

    fn event(seq: i64, created_at: &str) -> Result<(usize, ExportedEvent)> {
        let line = format!(
            r#"{{"seqNum":{seq},"parentSeqNum":{},"name":"e","args":{{"n":{seq}}},"createdAt":"{created_at}","clientId":"c","sessionId":"s"}}"#,
            seq - 1
        );
        Ok((seq as usize, serde_json::from_str(&line)?))
    }

    #[test]
    fn imports_stream_with_progress_and_a_refused_one_leaves_nothing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut db = SqliteDb::open(&dir.path().join("sync.db"), Durability::Normal)?;
        let mut seen = Vec::new();
        let events = (1..=2500).map(|s| event(s, "2026-11-28T05:18:53.123Z"));
        assert_eq!(import(&mut db, "s", events, false, "b1", |n| seen.push(n))?, 2500);
        assert_eq!(seen, vec![1000, 2000, 2500], "progress moves while the events are written");
        let bad = (1..=1500).map(|s| event(s, if s == 1200 { "last tuesday" } else { "2026-11-28T05:18:53Z" }));
        let refused = import(&mut db, "t", bad, false, "b2", |_| {}).expect_err("a bad createdAt");
        assert!(format!("{refused:#}").contains("line 1200: createdAt \"last tuesday\""), "{refused:#}");
        assert!(db.store_info("t")?.is_none(), "nothing left of the refused import");
        assert_eq!(db.store_info("s")?.map(|i| i.event_count), Some(2500));
        Ok(())
    }

    #[test]
    fn created_at_must_be_rfc_3339() {
        for ok in ["2026-11-28T05:18:53.123Z", "2026-11-28T05:18:53Z", "2026-02-28T23:59:60+01:00"] {
            assert!(super::is_rfc3339(ok), "{ok}");
        }
        for bad in ["yesterday", "2026-11-28", "2026-13-01T00:00:00Z", "2026-11-28 05:18:53Z", "2026-11-28T05:18:53"] {
            assert!(!super::is_rfc3339(bad), "{bad}");
        }
    }
}

/// Which backend id an imported store gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportBackendId {
    /// The export's own (its header line), so the store's clients continue without a reset; a
    /// file without a header gets a new one.
    FromFile,
    /// A new one: every client of the store resets (`onBackendIdMismatch`).
    New,
}

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    pub events: u64,
    pub backend_id: String,
    /// The backend id came from the file's header.
    pub kept_backend_id: bool,
}

/// The longest line an import reads: one event (a push is at most a few MiB).
pub const MAX_IMPORT_LINE_BYTES: usize = 16 << 20;

/// Lines of at most [`MAX_IMPORT_LINE_BYTES`]: a file without newlines must not fill memory.
fn capped_lines(mut reader: impl std::io::BufRead) -> impl Iterator<Item = Result<String>> {
    let mut number = 0usize;
    std::iter::from_fn(move || {
        use std::io::{BufRead, Read};
        number += 1;
        let mut buf = Vec::new();
        let read = (&mut reader).take(MAX_IMPORT_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf);
        match read {
            Err(e) => Some(Err(e.into())),
            Ok(0) => None,
            Ok(_) if buf.len() > MAX_IMPORT_LINE_BYTES && !buf.ends_with(b"\n") => {
                Some(Err(anyhow::anyhow!("line {number} is longer than {MAX_IMPORT_LINE_BYTES} bytes")))
            }
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8(buf).map_err(|_| anyhow::anyhow!("line {number} is not UTF-8")))
            }
        }
    })
}

/// Import JSON lines (an optional header line, then events, blank lines skipped) as the store's
/// log, streaming: `progress` gets the header's event count (if any) and the count so far. The
/// CLI reads a file or stdin; the admin API a spooled request body.
pub fn import_lines(
    db: &mut dyn Storage,
    store_id: &str,
    reader: impl std::io::BufRead,
    replace: bool,
    backend: ImportBackendId,
    mut progress: impl FnMut(Option<u64>, u64),
) -> Result<Imported> {
    let mut lines = capped_lines(reader).enumerate().filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()));
    // The header, if the first line is one (files from before it start with an event).
    let first = lines.next().map(|(i, l)| l.map(|l| (i, l))).transpose()?;
    let header = first.as_ref().and_then(|(_, l)| ExportHeader::parse(l));
    if first.is_none() {
        bail!("the file holds no events and no export header (to empty a store, reset it)");
    }
    let first_event = if header.is_some() { None } else { first };
    let from_file = header.as_ref().filter(|_| backend == ImportBackendId::FromFile).map(|h| h.backend_id.clone());
    let kept_backend_id = from_file.is_some();
    let backend_id = from_file.unwrap_or_else(|| nanoid::nanoid!());
    let total = header.as_ref().map(|h| h.events.max(0) as u64);
    let last_seq = std::cell::Cell::new(0);
    let events = first_event.into_iter().map(Ok).chain(lines.map(|(i, l)| l.map(|l| (i, l)))).map(|line| {
        let (i, line) = line?;
        let event: ExportedEvent =
            serde_json::from_str(&line).with_context(|| format!("line {}: not an exported event", i + 1))?;
        last_seq.set(event.seq_num);
        Ok((i + 1, event))
    });
    // A header promises the whole log: a file that stops short (a download cut off) is refused
    // before it commits, inside the import's transaction.
    let complete = |n: u64, last: i64| -> Result<()> {
        if let Some(h) = &header {
            if n != h.events.max(0) as u64 || last != h.head {
                bail!(
                    "the file ends after {n} events at seqNum {last}, but its header promises {} events up to {} (a truncated export?)",
                    h.events,
                    h.head
                );
            }
        }
        Ok(())
    };
    let n = import_checked(
        db,
        store_id,
        events,
        replace,
        &backend_id,
        |n| progress(total, n),
        |n| complete(n, last_seq.get()),
    )?;
    Ok(Imported { events: n, backend_id, kept_backend_id })
}
