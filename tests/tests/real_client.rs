//! Runs the real LiveStore client (`@livestore/sync-cf@0.4.0`'s `makeWsSync`, Node) against a
//! livestore-sync server: `tests/client/real-client.test.mjs` under `node --test`.

use anyhow::Result;
use livestore_sync_tests::{node_test, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_livestore_client_syncs_through_the_server() -> Result<()> {
    let server = TestServer::start().await?;
    let stdout = node_test("real-client.test.mjs", &server.ws_base(), &server.http_base()).await?;
    assert!(stdout.contains("pass 5"), "expected all 5 real-client tests to pass:\n{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_livestore_http_client_syncs_through_the_server() -> Result<()> {
    let server = TestServer::start().await?;
    let stdout = node_test("http-client.test.mjs", &server.ws_base(), &server.http_base()).await?;
    assert!(stdout.contains("pass 2"), "expected both HTTP-client tests to pass:\n{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_store_id_syncs_and_stays_its_own_store() -> Result<()> {
    let server = TestServer::start().await?;
    let stdout = node_test("store-ids.test.mjs", &server.ws_base(), &server.http_base()).await?;
    assert!(stdout.contains("pass 2"), "expected both store-id tests to pass:\n{stdout}");
    livestore_sync_tests::assert_bad_store_ids_are_refused(server.addr).await
}
