//! An example limit: at most `RATE_LIMIT_PER_MINUTE` (default 100) pushes per minute
//! per client id, counted in the hook's scratch space per store and calendar minute.

pub const DEFAULT_LIMIT: u32 = 100;

/// The scratch key of `client`'s counter for the minute containing `unix_secs`.
pub fn window_key(client: &str, unix_secs: u64) -> String {
    format!("rl:{}:{client}", unix_secs / 60)
}

/// The configured limit, or why it is unusable.
pub fn limit(configured: Option<&str>) -> Result<u32, String> {
    match configured {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => {
            v.trim().parse().map_err(|_| format!("rate-limit hook: RATE_LIMIT_PER_MINUTE={v:?} is not a number"))
        }
    }
}

/// Admit one more push given the stored count; the new count to store.
pub fn admit(stored: Option<&[u8]>, limit: u32, client: &str) -> Result<u32, String> {
    let count = stored.and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes).unwrap_or(0);
    if count >= limit {
        return Err(format!("rate limit: client {client:?} already pushed {count} times this minute (limit {limit})"));
    }
    Ok(count + 1)
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "push-gate", path: "../../wit/hooks" });

    use exports::livestore::hooks::on_push::{Context, Event, Guest};
    use livestore::hooks::{config, scratch};

    struct Hook;

    impl Guest for Hook {
        fn on_push(context: Context, batch: Vec<Event>) -> Result<(), String> {
            let limit = super::limit(config::get("RATE_LIMIT_PER_MINUTE").as_deref())?;
            let client = context.client_id.or_else(|| batch.first().map(|e| e.client_id.clone())).unwrap_or_default();
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let key = super::window_key(&client, now);
            let next = super::admit(scratch::get(&key).as_deref(), limit, &client)?;
            scratch::set(&key, &next.to_le_bytes(), Some(120_000))
        }
    }

    export!(Hook);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hundred_and_first_push_in_a_minute_is_refused() {
        let mut stored: Option<Vec<u8>> = None;
        for _ in 0..100 {
            let n = admit(stored.as_deref(), 100, "c").expect("within the limit");
            stored = Some(n.to_le_bytes().to_vec());
        }
        assert!(admit(stored.as_deref(), 100, "c").unwrap_err().contains("limit 100"));
        assert_ne!(window_key("c", 59), window_key("c", 60));
        assert_eq!(limit(None), Ok(100));
        assert_eq!(limit(Some("5")), Ok(5));
        assert!(limit(Some("many")).is_err());
    }
}
