//! The raw-frame conformance suite (`tests/src/conformance.rs`) against the native server, a
//! test per case, and what only the native server can show (restart, graceful shutdown).

use anyhow::Result;
use livestore_sync_tests::*;
use serde_json::json;

macro_rules! native_cases {
    ($($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> Result<()> {
                let server = TestServer::start().await?;
                conformance::$case(&server.endpoint()).await
            }
        )*
    };
}
for_each_conformance_case!(native_cases);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_backend_id_survive_a_restart() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = unique_store("restart");
    let mut server = TestServer::builder().data_dir(tmp.path()).token(Some(TOKEN)).start().await?;
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 5), None).await?;
    let (_, backend) = c.pull_seq_nums(&store).await?;
    server.stop().await?;
    assert!(c.recv_close().await.is_ok());

    let server = TestServer::builder().data_dir(tmp.path()).token(Some(TOKEN)).start().await?;
    let mut c = server.connect(&store).await?;
    let (seqs, backend_after) = c.pull_seq_nums(&store).await?;
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(backend_after, backend);
    // The head survived too: the next push must continue at 5.
    let (_, stale) = c.push(&store, chain(1, 1), None).await?;
    assert_eq!(failure_error(&stale).map(|e| e["minimumExpectedNum"].clone()), Some(json!(5)));
    let (_, ok) = c.push(&store, chain(6, 6), Some(&backend)).await?;
    assert!(is_push_ack(&ok), "{ok}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_sockets_with_1001() -> Result<()> {
    let mut server = TestServer::start().await?;
    let store = unique_store("bye");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 1), None).await?;
    server.stop().await?;
    assert_eq!(c.recv_close().await?, Some(1001));
    Ok(())
}
