//! after-push: POST every committed batch as JSON to `WEBHOOK_URL` (whose host the operator
//! must also allow with `--hook-allow-host`). A failed delivery is returned as an error, which
//! the server logs and counts (`livestore_sync_hook_failures_total{kind="error"}`).

/// One committed event as the webhook receives it.
pub struct Delivered<'a> {
    pub seq_num: i64,
    pub parent_seq_num: i64,
    pub name: &'a str,
    /// JSON text.
    pub args: Option<&'a str>,
    pub client_id: &'a str,
    pub session_id: &'a str,
}

/// The JSON body: `{"storeId","createdAt","events":[{seqNum,parentSeqNum,name,args,clientId,sessionId}]}`.
pub fn body(store_id: &str, created_at: &str, events: &[Delivered<'_>]) -> String {
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let args = e.args.and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()).unwrap_or_default();
            serde_json::json!({
                "seqNum": e.seq_num, "parentSeqNum": e.parent_seq_num, "name": e.name, "args": args,
                "clientId": e.client_id, "sessionId": e.session_id,
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
                .map(|e| super::Delivered {
                    seq_num: e.seq_num,
                    parent_seq_num: e.parent_seq_num,
                    name: &e.name,
                    args: e.args.as_deref(),
                    client_id: &e.client_id,
                    session_id: &e.session_id,
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
        let b = super::body(
            "s",
            "2026-01-01T00:00:00.000Z",
            &[super::Delivered {
                seq_num: 1,
                parent_seq_num: 0,
                name: "todoCreated-v1",
                args: Some(r#"{"id":"t1"}"#),
                client_id: "c",
                session_id: "s1",
            }],
        );
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["storeId"], "s");
        assert_eq!(v["events"][0]["args"]["id"], "t1");
        assert_eq!(v["events"][0]["seqNum"], 1);
    }
}
