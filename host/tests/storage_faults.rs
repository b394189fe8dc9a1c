//! Careless operation and storage faults against the `serve` binary: a second server on the
//! same data directory, the database file deleted under a running server, a failing write,
//! and the one fault that ends the process (SIGBUS). Nothing acknowledged may be lost, and
//! the log must say why.

use anyhow::{Context, Result};
use livestore_sync_tests::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_livestore-sync");

fn serve(dir: &Path) -> Result<binary::Served> {
    binary::serve(BIN, dir, &dir.join("data"), &["--auth-token", TOKEN, "--shards", "1"], &[])
}

async fn health(addr: std::net::SocketAddr) -> Result<(u16, String)> {
    http_request(addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_data_directory_is_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let first = serve(tmp.path())?;
    let out =
        binary::command(BIN).args(["serve", "--port", "0", "--data-dir"]).arg(tmp.path().join("data")).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second server must not start: {stderr}");
    assert!(stderr.contains(&format!("in use by livestore-sync serve (pid {})", first.child.id())), "{stderr}");
    // The first one is unaffected.
    assert_eq!(health(first.addr).await?.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_deleted_while_serving_stops_acknowledgements() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let served = serve(tmp.path())?;
    let mut c = WsClient::connect(&sync_url(&format!("ws://{}", served.addr), "gone", TOKEN)).await?;
    let (_, ack) = c.push("gone", chain(1, 3), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    let db = tmp.path().join("data/sync.db");
    std::fs::rename(&db, tmp.path().join("moved-away.db"))?;
    let (_, refused) = c.push("gone", chain(4, 4), None).await?;
    assert!(!is_push_ack(&refused), "a push after the file vanished must not be acknowledged: {refused}");
    assert!(failure_message(&refused).contains("was deleted"), "{refused}");
    let line = binary::wait_for_log(&served.log, "sync.db was deleted while the server was running")?;
    assert!(line.contains("ERROR"), "{line}");
    // Putting a copy back is a different file: still refused until restart.
    std::fs::copy(tmp.path().join("moved-away.db"), &db)?;
    let (status, body) = health(served.addr).await?;
    assert!(status == 503 && body.contains("sync.db was"), "{status} {body}");
    let (_, refused) = c.push("gone", chain(4, 4), None).await?;
    assert!(!is_push_ack(&refused), "{refused}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_puts_sqlites_message_in_the_log() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let served = serve(tmp.path())?;
    let mut c = WsClient::connect(&sync_url(&format!("ws://{}", served.addr), "full", TOKEN)).await?;
    let (_, ack) = c.push("full", chain(1, 1), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    // Make the next insert fail as a full disk would, from outside the server.
    let sqlite = rusqlite::Connection::open(tmp.path().join("data/sync.db"))?;
    sqlite.busy_timeout(Duration::from_secs(10))?;
    sqlite.execute_batch(
        "CREATE TRIGGER simulated_full BEFORE INSERT ON events \
         BEGIN SELECT RAISE(FAIL, 'simulated: database or disk is full'); END;",
    )?;
    let (_, refused) = c.push("full", chain(2, 2), None).await?;
    assert!(!is_push_ack(&refused), "{refused}");
    let line = binary::wait_for_log(&served.log, "storage failed")?;
    assert!(line.contains("simulated: database or disk is full") && line.contains("append"), "{line}");
    assert!(line.contains("ERROR") && line.contains("full"), "{line}");
    Ok(())
}

/// SIGBUS (what a failed write to SQLite's memory-mapped `-shm` raises) ends the process with
/// a message naming the cause; what was acknowledged is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigbus_is_reported_and_nothing_acknowledged_is_lost() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let mut child = binary::command(BIN)
        .args(["serve", "--port", "0", "--auth-token", TOKEN, "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let addr = tokio::task::spawn_blocking(move || -> Result<String> {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if let Some(rest) = line?.split("listening on ws://").nth(1) {
                return Ok(rest.split_whitespace().next().unwrap_or_default().to_string());
            }
        }
        anyhow::bail!("no listening line")
    })
    .await??;
    let mut c = WsClient::connect(&sync_url(&format!("ws://{addr}"), "bus", TOKEN)).await?;
    let (_, ack) = c.push("bus", chain(1, 25), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    assert!(Command::new("kill").args(["-BUS", &child.id().to_string()]).status()?.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fatal SIGBUS") && stderr.contains("-shm"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{:?}", out.status);
    let served = serve(tmp.path())?;
    let mut again = WsClient::connect(&sync_url(&format!("ws://{}", served.addr), "bus", TOKEN)).await?;
    assert_eq!(again.pull_seq_nums("bus").await?.0, (1..=25).collect::<Vec<_>>());
    Ok(())
}
