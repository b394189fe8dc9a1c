//! Operator commands on a data directory (`db`, `stores`, `export`, `import`, `reset`).
//! They open the SQLite file directly. Reading commands work beside a running server; writing
//! ones (`import`, `reset`, `db execute --write`) take the data directory's lock and refuse
//! while a server holds it: its admin endpoints go through the store's owner instead.

use crate::data_lock::DataDirLock;
use crate::layout_migration::NeedsMigration;
use crate::storage::postgres::PgConfig;
use crate::storage::{Db, Durability, Engine, Migrate};
use crate::store_admin::{import_lines, ExportHeader};
pub use crate::store_admin::{ImportBackendId, Imported};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("sync.db")
}

/// The data directory's lock for a writing command, or why not (a server is running).
fn lock_for_writing(data_dir: &Path, command: &str) -> Result<DataDirLock> {
    DataDirLock::acquire(data_dir, command).map_err(|e| {
        anyhow::anyhow!(
            "{e:#}: `{command}` writes, so it needs the server stopped; while it runs, use its admin API \
             (POST /admin/stores/{{id}}/reset with --admin-secret)"
        )
    })
}

fn existing_db_path(data_dir: &Path) -> Result<PathBuf> {
    let path = db_path(data_dir);
    if !path.exists() {
        bail!("no database at {} (is --data-dir right?)", path.display());
    }
    Ok(path)
}

/// The storage of a reading command: Postgres when a URL is given, else the data file. A
/// file in the older layout is migrated first when no server holds the directory (a running
/// server of this version has migrated it already).
fn open_existing(data_dir: &Path, postgres: Option<&PgConfig>) -> Result<Db> {
    if let Some(pg) = postgres {
        return crate::storage::open(
            &Engine::Postgres { pg: pg.clone(), node: crate::peer_notify::new_node_id() },
            Migrate::No,
        );
    }
    let path = existing_db_path(data_dir)?;
    let engine = Engine::Sqlite { path: path.clone(), durability: Durability::Normal };
    match crate::storage::open(&engine, Migrate::No) {
        Err(e) if e.is::<NeedsMigration>() => {
            let _lock = DataDirLock::acquire(data_dir, "migrate").map_err(|held| anyhow::anyhow!("{e}: {held:#}"))?;
            crate::storage::open(&engine, Migrate::Yes)
        }
        opened => opened,
    }
}

/// The storage of a writing command. The data file is written only with the data directory's
/// lock (no server on it); Postgres is shared by design (the admin API of a running node is
/// still the way to reset a store its nodes serve: it closes their sockets).
fn open_for_writing(data_dir: &Path, postgres: Option<&PgConfig>, command: &str) -> Result<(Db, Option<DataDirLock>)> {
    if let Some(pg) = postgres {
        return Ok((
            crate::storage::open(
                &Engine::Postgres { pg: pg.clone(), node: crate::peer_notify::new_node_id() },
                Migrate::No,
            )?,
            None,
        ));
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let lock = lock_for_writing(data_dir, command)?;
    let engine = Engine::Sqlite { path: db_path(data_dir), durability: Durability::Normal };
    Ok((crate::storage::open(&engine, Migrate::Yes)?, Some(lock)))
}

/// `db` and `backup` read the SQLite file; with Postgres, its own tools do that.
fn sqlite_only(postgres: Option<&PgConfig>, command: &str, instead: &str) -> Result<()> {
    if postgres.is_some() {
        bail!("`{command}` works on the SQLite data file; with --database-url use {instead}");
    }
    Ok(())
}

/// A progress bar on a terminal, nothing when stderr is piped.
fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

pub fn db_tables(data_dir: &Path, postgres: Option<&PgConfig>, out: &mut dyn Write) -> Result<()> {
    sqlite_only(postgres, "db tables", "psql's \\dt")?;
    let path = existing_db_path(data_dir)?;
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
    for t in stmt.query_map([], |r| r.get::<_, String>(0))? {
        writeln!(out, "{}", t?)?;
    }
    Ok(())
}

/// Run SQL and print rows as tab-separated text with a header. Read-only unless `write`.
pub fn db_execute(
    data_dir: &Path,
    postgres: Option<&PgConfig>,
    sql: &str,
    write: bool,
    out: &mut dyn Write,
) -> Result<()> {
    sqlite_only(postgres, "db execute", "psql")?;
    let path = db_path(data_dir);
    let _lock = if write { Some(lock_for_writing(data_dir, "db execute --write")?) } else { None };
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(&path, flags).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut stmt = conn.prepare(sql).context("preparing the statement")?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    if !names.is_empty() {
        writeln!(out, "{}", names.join("\t"))?;
    }
    let mut rows = stmt.query([]).map_err(|e| {
        if !write && e.to_string().contains("readonly") {
            anyhow::anyhow!("{e}: the database is opened read-only; pass --write to change it")
        } else {
            anyhow::Error::from(e)
        }
    })?;
    let mut changed = false;
    while let Some(row) = rows.next().map_err(|e| {
        if !write && e.to_string().contains("readonly") {
            anyhow::anyhow!("{e}: the database is opened read-only; pass --write to change it")
        } else {
            anyhow::Error::from(e)
        }
    })? {
        changed = true;
        let cells: Vec<String> = (0..names.len())
            .map(|i| match row.get_ref(i) {
                Ok(ValueRef::Null) => "NULL".to_string(),
                Ok(ValueRef::Integer(n)) => n.to_string(),
                Ok(ValueRef::Real(f)) => f.to_string(),
                Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).replace(['\t', '\n'], " "),
                Ok(ValueRef::Blob(b)) => format!("<{} bytes>", b.len()),
                Err(e) => format!("<{e}>"),
            })
            .collect();
        writeln!(out, "{}", cells.join("\t"))?;
    }
    if names.is_empty() && !changed {
        writeln!(out, "ok ({} rows changed)", conn.changes())?;
    }
    Ok(())
}

pub fn stores_list(data_dir: &Path, postgres: Option<&PgConfig>, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut db = open_existing(data_dir, postgres)?;
    let stores = db.list_stores()?;
    if json {
        for s in &stores {
            writeln!(out, "{}", serde_json::to_string(s)?)?;
        }
        return Ok(());
    }
    writeln!(out, "storeId\thead\tevents\tlastSyncAt\tbackendId")?;
    for s in stores {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            table_cell(&s.store_id),
            s.head,
            s.event_count,
            s.last_sync_at.as_deref().unwrap_or("-"),
            s.backend_id
        )?;
    }
    Ok(())
}

/// A store id in the tab-separated listing: as it is, unless a tab, newline or other control
/// character would break the table; then quoted and escaped (`--json` has every id exactly).
fn table_cell(id: &str) -> std::borrow::Cow<'_, str> {
    if id.chars().any(char::is_control) {
        format!("{id:?}").into()
    } else {
        id.into()
    }
}

pub fn stores_info(
    data_dir: &Path,
    postgres: Option<&PgConfig>,
    store_id: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut db = open_existing(data_dir, postgres)?;
    let Some(info) = db.store_info(store_id)? else { bail!("store {store_id:?} does not exist") };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        writeln!(out, "store:          {}", table_cell(&info.store_id))?;
        writeln!(out, "head:           {}", info.head)?;
        writeln!(out, "backend id:     {}", info.backend_id)?;
        writeln!(out, "events:         {}", info.event_count)?;
        writeln!(out, "created:        {}", info.created_at)?;
        writeln!(out, "last sync:      {}", info.last_sync_at.as_deref().unwrap_or("never"))?;
    }
    Ok(())
}

/// Write a store as JSON lines to `output` (a file) or stdout: a header line (store, backend
/// id, head), then one line per event.
pub fn export(data_dir: &Path, postgres: Option<&PgConfig>, store_id: &str, output: Option<&Path>) -> Result<u64> {
    let mut db = open_existing(data_dir, postgres)?;
    let Some(info) = db.store_info(store_id)? else { bail!("store {store_id:?} does not exist") };
    let bar = progress(Some(info.event_count as u64), &format!("exporting {store_id}"));
    let sink: Box<dyn Write> = match output {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    serde_json::to_writer(&mut sink, &ExportHeader::of(&info))?;
    sink.write_all(b"\n")?;
    let n = crate::store_admin::export(db.as_mut(), store_id, |event| {
        serde_json::to_writer(&mut sink, &event)?;
        sink.write_all(b"\n")?;
        bar.inc(1);
        Ok(())
    })?;
    sink.flush()?;
    bar.finish_and_clear();
    Ok(n)
}

/// Read JSON lines from `file` (`-` for stdin; an optional header line, then events) and import
/// them as the store's log.
pub fn import(
    data_dir: &Path,
    postgres: Option<&PgConfig>,
    store_id: &str,
    file: &Path,
    replace: bool,
    backend: ImportBackendId,
) -> Result<Imported> {
    let (mut db, _lock) = open_for_writing(data_dir, postgres, "import")?;
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?))
    };
    let bar = progress(None, &format!("importing into {store_id}"));
    let imported = import_lines(db.as_mut(), store_id, reader, replace, backend, |total, n| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(n)
    })
    .with_context(|| format!("reading {}", file.display()))?;
    bar.finish_and_clear();
    Ok(imported)
}

/// A consistent copy of a data directory's database, taken beside a running server
/// (`VACUUM INTO`: one read transaction, so the copy is one point in time). `to` is a new
/// directory that can be served as it is (`serve --data-dir TO`).
pub fn backup(data_dir: &Path, postgres: Option<&PgConfig>, to: &Path) -> Result<u64> {
    sqlite_only(postgres, "backup", "pg_dump (or your provider's backups)")?;
    let source = db_path(data_dir);
    if !source.exists() {
        bail!("no database at {} (is --data-dir right?)", source.display());
    }
    let target = db_path(to);
    if target.exists() {
        bail!("{} already exists; back up into a new directory", target.display());
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let conn = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("opening {}", source.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let target_text = target.to_str().with_context(|| format!("{} is not UTF-8", target.display()))?;
    conn.execute("VACUUM INTO ?1", [target_text]).with_context(|| format!("copying into {}", target.display()))?;
    Ok(std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0))
}

pub fn reset(data_dir: &Path, postgres: Option<&PgConfig>, store_id: &str) -> Result<(u64, String)> {
    if postgres.is_none() {
        existing_db_path(data_dir)?;
    }
    let (mut db, _lock) = open_for_writing(data_dir, postgres, "reset")?;
    let backend_id = nanoid::nanoid!();
    let removed = db.reset(store_id, &backend_id)?;
    Ok((removed, backend_id))
}
