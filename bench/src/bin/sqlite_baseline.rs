//! Raw rusqlite: the format-7 event table, WAL + synchronous=NORMAL (the server's default),
//! batches of `BATCH` events per transaction. The ceiling for push throughput on this disk.
//! Usage: sqlite_baseline [events] [batch] [runs]

use anyhow::Result;
use livestore_sync_bench::median;
use rusqlite::{params, Connection};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (events, batch, runs) =
        (*args.first().unwrap_or(&10_000), *args.get(1).unwrap_or(&100), *args.get(2).unwrap_or(&3));
    let mut rates = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir()?;
        let mut db = Connection::open(dir.path().join("b.db"))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.execute_batch("CREATE TABLE e (seqNum integer primary key, parentSeqNum integer not null, name text not null, args text, createdAt text not null, clientId text not null, sessionId text not null) strict")?;
        let started = Instant::now();
        let mut seq = 0i64;
        while (seq as usize) < events {
            let tx = db.transaction()?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO e VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
                for _ in 0..batch {
                    seq += 1;
                    let args = format!(r#"{{"id":"todo-{seq}","text":"event {seq}"}}"#);
                    insert.execute(params![
                        seq,
                        seq - 1,
                        "todoCreated-v1",
                        args,
                        "2026-11-26T00:00:00.000Z",
                        "c",
                        "s"
                    ])?;
                }
            }
            tx.commit()?;
        }
        rates.push(events as f64 / started.elapsed().as_secs_f64());
    }
    let rate = median(&mut rates);
    println!("{}", serde_json::json!({ "baseline": "sqlite", "events": events, "batch": batch, "eventsPerSec": rate }));
    Ok(())
}
