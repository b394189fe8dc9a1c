//! Any bytes through the frame decoder and the payload schemas: no panic, bounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livestore_sync_guest::events::check_batch;
use livestore_sync_guest::wire::{decode_client_msg, parse_payload, ClientMsg, PullPayload, PushPayload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(ClientMsg::Request { payload, .. }) = decode_client_msg(text) {
        if let Ok(push) = parse_payload::<PushPayload<'_>>(payload, "push") {
            let _ = check_batch(0, &push.batch);
            let _ = check_batch(i64::MAX, &push.batch);
        }
        let _ = parse_payload::<PullPayload>(payload, "pull");
    }
});
