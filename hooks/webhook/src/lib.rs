//! after-push: POST every committed batch as JSON to `WEBHOOK_URL` (whose host the operator
//! must also allow with `--hook-allow-host`). A failed delivery is returned as an error, which
//! the server logs and counts (`livestore_sync_hook_failures_total{kind="error"}`).

/// The JSON body: `{"storeId","createdAt","events":[{seqNum,parentSeqNum,name,args,clientId,sessionId}]}`.
pub fn body(store_id: &str, created_at: &str, events: &[(i64, i64, &str, Option<&str>, &str, &str)]) -> String {
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|(seq, parent, name, args, client, session)| {
            let args = args.and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()).unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "seqNum": seq, "parentSeqNum": parent, "name": name, "args": args,
                "clientId": client, "sessionId": session,
            })
        })
        .collect();
    serde_json::json!({ "storeId": store_id, "createdAt": created_at, "events": events }).to_string()
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "push-observer", path: "../../wit/hooks" });

    use exports::livestore::hooks::after_push::{Context, Event, Guest};

    struct Hook;

    impl Guest for Hook {
        fn after_push(context: Context, batch: Vec<Event>, created_at: String) -> Result<(), String> {
            let Some(url) = livestore::hooks::config::get("WEBHOOK_URL") else {
                return Err("webhook hook: no WEBHOOK_URL configured".to_string());
            };
            let events: Vec<_> = batch
                .iter()
                .map(|e| {
                    (e.seq_num, e.parent_seq_num, e.name.as_str(), e.args.as_deref(), e.client_id.as_str(), e.session_id.as_str())
                })
                .collect();
            let json = super::body(&context.store_id, &created_at, &events);
            match http_post::post(&url, "application/json", json.as_bytes())? {
                status if (200..300).contains(&status) => Ok(()),
                status => Err(format!("webhook {url} answered {status}")),
            }
        }
    }

    export!(Hook);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_body_carries_the_batch_with_parsed_args() {
        let b = super::body("s", "2026-01-01T00:00:00.000Z", &[(1, 0, "todoCreated-v1", Some(r#"{"id":"t1"}"#), "c", "s1")]);
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["storeId"], "s");
        assert_eq!(v["events"][0]["args"]["id"], "t1");
        assert_eq!(v["events"][0]["seqNum"], 1);
    }
}
