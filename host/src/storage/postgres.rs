//! The Postgres engine (`schema/postgres.sql`): the same two tables as SQLite's layout, so any
//! number of nodes can serve any store. Postgres arbitrates each store's head: an append moves
//! the head with `UPDATE … WHERE head = expected` and inserts the batch in the same
//! transaction, so of two nodes appending at the same parent exactly one commits; the other's
//! update finds the moved head and writes nothing. The connection is synchronous (the `postgres`
//! crate): each shard thread owns one, as each owns a SQLite connection.

use super::{already_has_events, AppendError, Row, Storage, StoreInfo};
use crate::peer_notify::Notice;
use crate::store_id::validate_store_id;
use anyhow::{bail, Context, Result};
use postgres::{Client, Statement};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio_postgres_rustls::MakeRustlsConnect;

const SCHEMA: &str = include_str!("../../../schema/postgres.sql");

/// Serialises schema creation between nodes starting at once (`CREATE TABLE IF NOT EXISTS`
/// alone can collide in Postgres' catalog).
const SCHEMA_LOCK: i64 = 0x6c73_7379_6e63; // "lssync"

/// Rows per statement when an import writes (one `UNNEST` insert each).
const IMPORT_CHUNK: usize = 1000;

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; `password=…` in a
/// key-value string likewise. For logs and errors.
pub fn redacted_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where Postgres is and which certificate authorities its TLS certificate may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://user:password@host:5432/db` or `host=… user=…`; its `sslmode` decides TLS.
    pub url: String,
    /// PEM certificates trusted besides the public web roots (`--database-ca-file`).
    pub ca_file: Option<PathBuf>,
}

impl PgConfig {
    pub fn new(url: &str) -> PgConfig {
        PgConfig { url: url.to_string(), ca_file: None }
    }
}

/// TLS for Postgres connections. The URL's `sslmode` decides whether it is used (`prefer`, the
/// default, when the server offers it; `require` insists; `disable` never); the server's
/// certificate must chain to a public web root or to a certificate in `ca_file`.
pub fn tls(ca_file: Option<&Path>) -> Result<MakeRustlsConnect> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let mut added = 0;
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading the Postgres CA file {}", path.display()))?;
        for cert in certs {
            let cert = cert.with_context(|| format!("reading a certificate in {}", path.display()))?;
            roots.add(cert).with_context(|| format!("a certificate in {}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            bail!("the Postgres CA file {} holds no PEM certificate", path.display());
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS for Postgres")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// What to add to a failed connection's error: how to fix an untrusted certificate.
pub fn connect_hint(error: &dyn std::fmt::Display) -> &'static str {
    let text = error.to_string().to_ascii_lowercase();
    if text.contains("certificate") || text.contains("unknownissuer") || text.contains("tls") {
        " (TLS: trust the server's CA with --database-ca-file, or set sslmode=disable on a private network)"
    } else {
        ""
    }
}

pub struct PostgresDb {
    pg: PgConfig,
    /// Named in this connection's notices (`peer_notify`).
    node: String,
    client: Client,
    /// Prepared statements of this connection, by their SQL.
    statements: HashMap<&'static str, Statement>,
}

/// How long a connection attempt may take unless the URL says (`connect_timeout`): an
/// unreachable host must fail a request, not stall its store's shard for minutes.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The URL as a client configuration, with the default connect timeout.
pub fn client_config(url: &str) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config =
        url.parse().with_context(|| format!("reading the Postgres URL {}", redacted_url(url)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // A connection a NAT or balancer dropped silently must be noticed in about a minute (the
    // listening one would otherwise stay deaf for the kernel's two-hour default).
    if config.get_keepalives_idle() == std::time::Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(std::time::Duration::from_secs(30));
        config.keepalives_interval(std::time::Duration::from_secs(10));
        config.keepalives_retries(3);
    }
    Ok(config)
}

fn connect_client(pg: &PgConfig) -> Result<Client> {
    let config = postgres::Config::from(client_config(&pg.url)?);
    let mut client = config.connect(tls(pg.ca_file.as_deref())?).map_err(|e| {
        let hint = connect_hint(&format!("{e:?}"));
        anyhow::Error::from(e).context(format!("connecting to Postgres at {}{hint}", redacted_url(&pg.url)))
    })?;
    // Create the tables only when missing: the DDL takes locks (and ownership) a running
    // database should not need for every connection.
    let present: bool = client
        .query_one(
            "SELECT to_regclass('livestore_sync_events_event_id') IS NOT NULL \
             AND to_regclass('livestore_sync_health') IS NOT NULL",
            &[],
        )?
        .try_get(0)?;
    if present {
        return Ok(client);
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    tx.batch_execute(SCHEMA).context("creating the tables in Postgres")?;
    tx.commit()?;
    Ok(client)
}

/// Postgres text cannot hold NUL; say so instead of failing with an encoding error.
fn check_id(store_id: &str) -> Result<()> {
    validate_store_id(store_id)?;
    if store_id.contains('\0') {
        bail!("store id {store_id:?} contains a NUL character, which Postgres cannot store");
    }
    Ok(())
}

fn row_of(r: &postgres::Row) -> Result<Row> {
    Ok(Row {
        seq_num: r.try_get(0)?,
        parent_seq_num: r.try_get(1)?,
        name: r.try_get(2)?,
        args: r.try_get(3)?,
        created_at: r.try_get(4)?,
        client_id: r.try_get(5)?,
        session_id: r.try_get(6)?,
        event_id: r.try_get(7)?,
    })
}

fn info_of(r: &postgres::Row) -> Result<StoreInfo> {
    Ok(StoreInfo {
        store_id: r.try_get(0)?,
        head: r.try_get(1)?,
        backend_id: r.try_get(2)?,
        event_count: r.try_get(3)?,
        created_at: r.try_get(4)?,
        last_sync_at: r.try_get(5)?,
    })
}

const NOW: &str = r#"to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;
const INFO: &str =
    "SELECT store_id, head, backend_id, event_count, created_at, last_sync_at FROM livestore_sync_stores";
const READ: &str =
    "SELECT e.seq_num, e.parent_seq_num, e.name, e.args, e.created_at, e.client_id, e.session_id, e.event_id \
     FROM livestore_sync_events e JOIN livestore_sync_stores s ON e.store_key = s.store_key \
     WHERE s.store_id = $1 AND e.seq_num > $2 ORDER BY e.seq_num LIMIT $3";
const INSERT: &str = "INSERT INTO livestore_sync_events \
     (store_key, seq_num, parent_seq_num, name, args, created_at, client_id, session_id, event_id) \
     SELECT $1, * FROM UNNEST($2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])";
/// Move the head if it is still the expected one, and announce the commit to the other nodes
/// (`pg_notify` is delivered at commit, and only if the head moved).
const MOVE_HEAD: &str = "WITH moved AS (UPDATE livestore_sync_stores \
     SET head = $3, last_sync_at = $4, event_count = event_count + $5 \
     WHERE store_id = $1 AND head = $2 AND ($7::text IS NULL OR backend_id = $7) RETURNING store_key) \
     SELECT store_key, pg_notify('livestore_sync', $6)::text FROM moved";
const NOTIFY: &str = "SELECT pg_notify('livestore_sync', $1)::text";

/// Insert `rows` for `key` in one statement.
fn insert(tx: &mut postgres::Transaction<'_>, statement: &Statement, key: i64, rows: &[Row]) -> Result<()> {
    let seq: Vec<i64> = rows.iter().map(|r| r.seq_num).collect();
    let parent: Vec<i64> = rows.iter().map(|r| r.parent_seq_num).collect();
    let name: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let args: Vec<Option<&str>> = rows.iter().map(|r| r.args.as_deref()).collect();
    let created: Vec<&str> = rows.iter().map(|r| r.created_at.as_str()).collect();
    let client: Vec<&str> = rows.iter().map(|r| r.client_id.as_str()).collect();
    let session: Vec<&str> = rows.iter().map(|r| r.session_id.as_str()).collect();
    let event_id: Vec<Option<&str>> = rows.iter().map(|r| r.event_id.as_deref()).collect();
    tx.execute(statement, &[&key, &seq, &parent, &name, &args, &created, &client, &session, &event_id]).with_context(
        || {
            format!(
                "inserting events {}..={}",
                rows.first().map_or(0, |r| r.seq_num),
                rows.last().map_or(0, |r| r.seq_num)
            )
        },
    )?;
    Ok(())
}

impl PostgresDb {
    pub fn connect(pg: &PgConfig, node: &str) -> Result<PostgresDb> {
        Ok(PostgresDb {
            pg: pg.clone(),
            node: node.to_string(),
            client: connect_client(pg)?,
            statements: HashMap::new(),
        })
    }

    /// The connection, opened again if Postgres closed it (a restart, a network cut): the
    /// request that finds it closed fails, the next one reconnects.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.is_closed() {
            self.statements.clear();
            self.client = connect_client(&self.pg)?;
            tracing::info!(url = redacted_url(&self.pg.url), "reconnected to Postgres");
        }
        Ok(&mut self.client)
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        self.client()?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).with_context(|| format!("preparing {sql}"))?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

impl Storage for PostgresDb {
    fn probe_write(&mut self) -> Result<()> {
        let sql = "INSERT INTO livestore_sync_health (id, checked_at) VALUES (1, now()) \
                   ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at";
        let s = self.statement(sql)?;
        self.client.execute(&s, &[]).context("writing the health probe")?;
        Ok(())
    }

    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<(i64, String)> {
        if let Some(found) = self.store_context(store_id)? {
            return Ok(found);
        }
        let sql: &'static str = const_format_insert_store();
        let s = self.statement(sql)?;
        self.client.execute(&s, &[&store_id, &fresh_backend_id]).context("creating the store")?;
        self.store_context(store_id)?.with_context(|| format!("store {store_id:?} vanished while it was created"))
    }

    fn store_context(&mut self, store_id: &str) -> Result<Option<(i64, String)>> {
        check_id(store_id)?;
        let s = self.statement("SELECT head, backend_id FROM livestore_sync_stores WHERE store_id = $1")?;
        let row = self.client.query_opt(&s, &[&store_id])?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    fn append_batch(
        &mut self,
        store_id: &str,
        expected_head: i64,
        expected_backend: Option<&str>,
        rows: &[Row],
    ) -> Result<(), AppendError> {
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let move_head = self.statement(MOVE_HEAD)?;
        let insert_rows = self.statement(INSERT)?;
        let mut tx = self.client.transaction().context("starting the append")?;
        let moved = tx
            .query_opt(
                &move_head,
                &[
                    &store_id,
                    &expected_head,
                    &last.seq_num,
                    &last.created_at,
                    &(rows.len() as i64),
                    &Notice::committed(&self.node, store_id, last.seq_num),
                    &expected_backend,
                ],
            )
            .context("moving the head")?;
        let Some(moved) = moved else {
            let stored: Option<(i64, String)> = tx
                .query_opt("SELECT head, backend_id FROM livestore_sync_stores WHERE store_id = $1", &[&store_id])
                .context("reading the stored head")?
                .map(|r| Ok::<_, postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
                .transpose()
                .context("reading the stored head")?;
            return match stored {
                Some((_, backend)) if expected_backend.is_some_and(|b| b != backend) => {
                    Err(AppendError::BackendChanged)
                }
                Some((head, _)) => Err(AppendError::HeadMoved(head)),
                None => Err(anyhow::anyhow!("store {store_id:?} does not exist (it was removed while open)").into()),
            };
        };
        let key: i64 = moved.try_get(0).context("reading the store key")?;
        insert(&mut tx, &insert_rows, key, rows)?;
        tx.commit().context("committing the batch")?;
        Ok(())
    }

    fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>> {
        let s = self.statement(
            "SELECT e.event_id, e.seq_num FROM livestore_sync_events e \
             JOIN livestore_sync_stores s ON e.store_key = s.store_key \
             WHERE s.store_id = $1 AND e.event_id = ANY($2)",
        )?;
        let found: HashMap<String, i64> = self
            .client
            .query(&s, &[&store_id, &ids])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        Ok(ids.iter().map(|id| found.get(id).copied()).collect())
    }

    fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64> {
        let s = self.statement(
            "SELECT MAX(e.seq_num) FROM livestore_sync_events e \
             JOIN livestore_sync_stores s ON e.store_key = s.store_key \
             WHERE s.store_id = $1 AND e.created_at <= $2",
        )?;
        let seq: Option<i64> = self.client.query_one(&s, &[&store_id, &timestamp])?.try_get(0)?;
        Ok(seq.unwrap_or(0))
    }

    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64> {
        let s = self.statement(
            "SELECT COUNT(*) FROM livestore_sync_events e \
             JOIN livestore_sync_stores s ON e.store_key = s.store_key \
             WHERE s.store_id = $1 AND e.seq_num > $2",
        )?;
        let n: i64 = self.client.query_one(&s, &[&store_id, &cursor])?.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<Row>> {
        let s = self.statement(READ)?;
        let rows = self.client.query(&s, &[&store_id, &cursor, &i64::from(limit)]).context("reading events")?;
        rows.iter().map(row_of).collect()
    }

    fn list_stores(&mut self) -> Result<Vec<StoreInfo>> {
        let rows = self.client()?.query(&format!("{INFO} ORDER BY store_id COLLATE \"C\""), &[])?;
        rows.iter().map(info_of).collect()
    }

    fn store_info(&mut self, store_id: &str) -> Result<Option<StoreInfo>> {
        check_id(store_id)?;
        let row = self.client()?.query_opt(&format!("{INFO} WHERE store_id = $1"), &[&store_id])?;
        row.as_ref().map(info_of).transpose()
    }

    fn replace_log(
        &mut self,
        store_id: &str,
        backend_id: &str,
        replace: bool,
        rows: &mut dyn Iterator<Item = Result<Row>>,
        before_commit: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<u64> {
        check_id(store_id)?;
        let insert_rows = self.statement(INSERT)?;
        let mut tx = self.client.transaction()?;
        tx.execute(const_format_insert_store(), &[&store_id, &backend_id])?;
        let row = tx.query_one(
            "SELECT store_key, head, event_count FROM livestore_sync_stores WHERE store_id = $1 FOR UPDATE",
            &[&store_id],
        )?;
        let (key, head, count): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if (count > 0 || head > 0) && !replace {
            return Err(already_has_events(store_id, count));
        }
        tx.execute("DELETE FROM livestore_sync_events WHERE store_key = $1", &[&key])?;
        let (mut n, mut last): (u64, Option<Row>) = (0, None);
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
        loop {
            let next = rows.next().transpose()?;
            let done = next.is_none();
            if let Some(row) = next {
                chunk.push(row);
            }
            if chunk.len() == IMPORT_CHUNK || (done && !chunk.is_empty()) {
                insert(&mut tx, &insert_rows, key, &chunk)?;
                n += chunk.len() as u64;
                last = chunk.pop();
                chunk.clear();
            }
            if done {
                break;
            }
        }
        tx.execute(
            "UPDATE livestore_sync_stores SET head = $2, backend_id = $3, event_count = $4, last_sync_at = $5 \
             WHERE store_key = $1",
            &[&key, &last.as_ref().map_or(0, |r| r.seq_num), &backend_id, &(n as i64), &last.map(|r| r.created_at)],
        )?;
        // The other nodes drop their instances of the store (its head and backend id changed).
        tx.query_one(NOTIFY, &[&Notice::changed(&self.node, store_id)])?;
        before_commit(n)?;
        tx.commit().context("committing the import")?;
        Ok(n)
    }

    fn reset(&mut self, store_id: &str, new_backend_id: &str) -> Result<u64> {
        check_id(store_id)?;
        let notice = Notice::changed(&self.node, store_id);
        let mut tx = self.client()?.transaction()?;
        let key: i64 = match tx
            .query_opt("SELECT store_key FROM livestore_sync_stores WHERE store_id = $1 FOR UPDATE", &[&store_id])?
        {
            Some(r) => r.try_get(0)?,
            None => bail!("store {store_id:?} does not exist"),
        };
        let removed = tx.execute("DELETE FROM livestore_sync_events WHERE store_key = $1", &[&key])?;
        tx.execute(
            "UPDATE livestore_sync_stores SET head = 0, backend_id = $2, event_count = 0 WHERE store_key = $1",
            &[&key, &new_backend_id],
        )?;
        tx.query_one(NOTIFY, &[&notice])?;
        tx.commit().context("committing the reset")?;
        Ok(removed)
    }
}

/// Create a store row unless it exists (`$1` id, `$2` backend id).
fn const_format_insert_store() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO livestore_sync_stores (store_id, head, backend_id, created_at) VALUES ($1, 0, $2, {NOW}) \
             ON CONFLICT (store_id) DO NOTHING"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(redacted_url("postgres://sync:s3cret@db:5432/app"), "postgres://sync:***@db:5432/app");
        assert_eq!(redacted_url("postgres://db/app"), "postgres://db/app");
        assert_eq!(redacted_url("host=/tmp user=sync password=s3cret"), "host=/tmp user=sync password=***");
    }
}
