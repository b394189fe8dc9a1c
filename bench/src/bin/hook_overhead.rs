//! What hooks cost: one sandboxed hook call (fresh instance, limits armed) and a push through
//! the server with and without hooks. Release build:
//!   cargo run --release -p livestore-sync-bench --bin hook_overhead
//! `-- --worker`: the same pushes through the Cloudflare worker under local `wrangler dev`,
//! bundled without hooks and with the same three hooks (metered by wasm-meter).
use anyhow::{Context, Result};
use livestore_sync::hooks::{HookContext, HookEvent, HookSettings, Hooks};
use livestore_sync_tests::hook_builds::hook_wasm;
use livestore_sync_tests::workerd::worker_with_hooks;
use livestore_sync_tests::{chain, event, is_push_ack, sync_url, unique_store, TestServer, WsClient, TOKEN};
use std::time::{Duration, Instant};

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1e6
}

fn settings() -> Result<HookSettings> {
    Ok(HookSettings {
        specs: vec![
            format!("static-token={}", hook_wasm("static_token")?.display()),
            format!("allowlist={}", hook_wasm("event_allowlist")?.display()),
            format!("rate-limit={}", hook_wasm("rate_limit")?.display()),
        ],
        vars: [("AUTH_TOKEN", TOKEN), ("ALLOWED_EVENTS", "todoCreated-v1"), ("RATE_LIMIT_PER_MINUTE", "100000000")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..HookSettings::default()
    })
}

fn direct_calls(n: usize) -> Result<()> {
    let hooks = Hooks::load(&settings()?)?.context("hooks")?;
    let payload = format!(r#"{{"authToken":"{TOKEN}"}}"#);
    let ctx = HookContext { store_id: "bench".into(), client_id: Some("c".into()), ..HookContext::default() };
    let ev = HookEvent {
        seq_num: 1,
        parent_seq_num: 0,
        name: "todoCreated-v1".into(),
        args: Some(r#"{"id":"t1","text":"hello"}"#.into()),
        client_id: "c".into(),
        session_id: "s".into(),
    };
    let mut validate = Vec::with_capacity(n);
    let mut push = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        hooks.validate_payload("bench", Some(&payload), &[]).map_err(|e| anyhow::anyhow!(e.message()))?;
        validate.push(t.elapsed());
        let t = Instant::now();
        hooks.on_push(&ctx, std::slice::from_ref(&ev)).map_err(|e| anyhow::anyhow!(e.message()))?;
        push.push(t.elapsed());
    }
    println!(
        "one validate-payload call (static-token): median {:.1} µs, p99 {:.1} µs",
        percentile(&mut validate, 0.5),
        percentile(&mut validate, 0.99)
    );
    println!(
        "on-push for one event (allowlist + rate-limit, two hook calls): median {:.1} µs, p99 {:.1} µs",
        percentile(&mut push, 0.5),
        percentile(&mut push, 0.99)
    );
    Ok(())
}

async fn pushes(label: &str, hooks: Option<HookSettings>, n: i64) -> Result<()> {
    let server = TestServer::builder()
        .config(|c| {
            if let Some(h) = hooks {
                c.hooks = h;
            }
        })
        .start()
        .await?;
    pushes_to(label, &server.ws_base(), n).await
}

/// The worker bundled with `specs` (`name=path,…`; empty: no hooks).
async fn worker_pushes(label: &str, with_hooks: bool, n: i64) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let settings = settings()?;
    let vars: serde_json::Map<String, serde_json::Value> =
        settings.vars.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
    let vars = serde_json::Value::Object(vars).to_string();
    let w = if with_hooks {
        worker_with_hooks(tmp.path(), &settings.specs.join(","), &[("HOOK_VARS", &vars)]).await?
    } else {
        worker_with_hooks(tmp.path(), "", &[("AUTH_TOKEN", TOKEN)]).await?
    };
    pushes_to(label, &w.ws_base(), n).await
}

async fn pushes_to(label: &str, ws_base: &str, n: i64) -> Result<()> {
    let store = unique_store("hook-bench");
    let mut c = WsClient::connect(&sync_url(ws_base, &store, TOKEN)).await?;
    // Warm up: the first pushes open the store and instantiate the hooks.
    let (_, ok) = c.push(&store, vec![event(1, 0)], None).await?;
    anyhow::ensure!(is_push_ack(&ok), "{ok}");
    let mut lat = Vec::with_capacity(n as usize);
    for seq in 2..=n + 1 {
        let t = Instant::now();
        let (_, ok) = c.push(&store, vec![event(seq, seq - 1)], None).await?;
        lat.push(t.elapsed());
        anyhow::ensure!(is_push_ack(&ok), "{ok}");
    }
    let started = Instant::now();
    let batches = 100;
    for b in 0..batches {
        let from = n + 2 + b * 100;
        let (_, ok) = c.push(&store, chain(from, from + 99), None).await?;
        anyhow::ensure!(is_push_ack(&ok), "{ok}");
    }
    let rate = (batches * 100) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{label}: 1-event push ack median {:.0} µs, p99 {:.0} µs; 100-event batches {rate:.0} events/s",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--worker") {
        worker_pushes("worker, no hooks", false, 1000).await?;
        worker_pushes("worker, with on-push hooks (allowlist + rate-limit)", true, 1000).await?;
        return Ok(());
    }
    tokio::task::spawn_blocking(|| direct_calls(2000)).await??;
    pushes("no hooks", None, 2000).await?;
    pushes("with on-push hooks (allowlist + rate-limit)", Some(settings()?), 2000).await?;
    Ok(())
}
