//! WIT glue: the component's exports call into [`StoreSync`]; its imports implement [`Host`].

use crate::host::{
    AppendError, Caller, EventRow, HookKinds, Host, LogLevel, PushRejection, Settings, StoreState, Telemetry,
};
use crate::{Protocol, StoreSync};
use std::cell::RefCell;

wit_bindgen::generate!({ world: "sync-component", path: "../wit" });

use exports::livestore::sync::handler::Guest;
use livestore::sync::{auth, config, connections, hooks, storage, telemetry, types};

struct WitHost;

fn from_wit(row: types::EventRow) -> EventRow {
    EventRow {
        seq_num: row.seq_num,
        parent_seq_num: row.parent_seq_num,
        name: row.name,
        args: row.args,
        created_at: row.created_at,
        client_id: row.client_id,
        session_id: row.session_id,
        event_id: row.event_id,
    }
}

fn to_wit(row: &EventRow) -> types::EventRow {
    types::EventRow {
        seq_num: row.seq_num,
        parent_seq_num: row.parent_seq_num,
        name: row.name.clone(),
        args: row.args.clone(),
        created_at: row.created_at.clone(),
        client_id: row.client_id.clone(),
        session_id: row.session_id.clone(),
        event_id: row.event_id.clone(),
    }
}

fn wit_caller(caller: Caller) -> types::Caller {
    match caller {
        Caller::Connection(conn) => types::Caller::Connection(conn),
        Caller::HttpRequest => types::Caller::HttpRequest,
    }
}

impl Host for WitHost {
    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<StoreState, String> {
        storage::init_store(store_id, fresh_backend_id).map(|s| StoreState { head: s.head, backend_id: s.backend_id })
    }
    fn append_batch(&mut self, store_id: &str, expected_head: i64, events: &[EventRow]) -> Result<(), AppendError> {
        let rows: Vec<types::EventRow> = events.iter().map(to_wit).collect();
        storage::append_batch(store_id, expected_head, &rows).map_err(|e| match e {
            types::AppendError::HeadMoved(head) => AppendError::HeadMoved(head),
            types::AppendError::StorageFailed(message) => AppendError::Storage(message),
        })
    }
    fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>, String> {
        storage::find_event_ids(store_id, ids)
    }
    fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64, String> {
        storage::seq_at_time(store_id, timestamp)
    }
    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64, String> {
        storage::count_after(store_id, cursor)
    }
    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String> {
        storage::read_after(store_id, cursor, limit).map(|rows| rows.into_iter().map(from_wit).collect())
    }
    fn send(&mut self, conn: u64, frame: &str) {
        connections::send(conn, frame)
    }
    fn close(&mut self, conn: u64, code: u16, reason: &str) {
        connections::close(conn, code, reason)
    }
    fn save_state(&mut self, conn: u64, state: &str) {
        connections::save_state(conn, state)
    }
    fn set_ignored_frames(&mut self, conn: u64, frames: &[String]) {
        connections::set_ignored_frames(conn, frames)
    }
    fn check_token(&mut self, token: &str) -> bool {
        auth::check_token(token)
    }
    fn record(&mut self, event: Telemetry) {
        let event = match event {
            Telemetry::PushAccepted { events, micros } => {
                types::TelemetryEvent::PushAccepted(types::AcceptedPush { events, micros })
            }
            Telemetry::PushRejected(reason) => types::TelemetryEvent::PushRejected(match reason {
                PushRejection::InvalidPayload => types::PushRejection::InvalidPayload,
                PushRejection::StoreMismatch => types::PushRejection::StoreMismatch,
                PushRejection::TooManyEvents => types::PushRejection::TooManyEvents,
                PushRejection::BackendIdMismatch => types::PushRejection::BackendIdMismatch,
                PushRejection::ServerAhead => types::PushRejection::ServerAhead,
                PushRejection::InvalidBatch => types::PushRejection::InvalidBatch,
                PushRejection::Hook => types::PushRejection::Hook,
                PushRejection::StorageError => types::PushRejection::StorageError,
            }),
            Telemetry::ChunkSent => types::TelemetryEvent::ChunkSent,
        };
        telemetry::report(event)
    }
    fn settings(&mut self) -> Settings {
        let s = config::get();
        Settings { max_push_events: s.max_push_events }
    }
    fn hooks_loaded(&mut self) -> HookKinds {
        let k = hooks::loaded();
        HookKinds {
            on_push: k.contains(hooks::HookKinds::ON_PUSH),
            on_pull: k.contains(hooks::HookKinds::ON_PULL),
            after_push: k.contains(hooks::HookKinds::AFTER_PUSH),
        }
    }
    fn on_push_hook(&mut self, caller: Caller, rows: &[EventRow]) -> Result<(), String> {
        let rows: Vec<types::EventRow> = rows.iter().map(to_wit).collect();
        hooks::on_push(wit_caller(caller), &rows)
    }
    fn on_pull_hook(&mut self, caller: Caller, cursor: i64, live: bool) -> Result<(), String> {
        hooks::on_pull(wit_caller(caller), cursor, live)
    }
    fn after_push_hook(&mut self, caller: Caller, rows: &[EventRow]) {
        let rows: Vec<types::EventRow> = rows.iter().map(to_wit).collect();
        hooks::after_push(wit_caller(caller), &rows)
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => types::LogLevel::Debug,
            LogLevel::Info => types::LogLevel::Info,
            LogLevel::Warn => types::LogLevel::Warn,
            LogLevel::Error => types::LogLevel::Error,
        };
        telemetry::log(level, message)
    }
    fn now_millis(&mut self) -> i64 {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since_epoch.map(|d| d.as_millis() as i64).unwrap_or(0)
    }
    fn monotonic_micros(&mut self) -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_micros().min(u128::from(u64::MAX)) as u64
    }
    fn random_bytes(&mut self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // No entropy source is a broken host; fall back to the clock so ids still differ.
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (nanos >> ((i * 6) % 120)) as u8;
            }
        }
    }
}

thread_local! {
    static STORE: RefCell<Option<StoreSync>> = const { RefCell::new(None) };
}

/// Run `f` on this instance's store, opening it on first use.
fn with_store<R>(store_id: &str, f: impl FnOnce(&mut StoreSync) -> R) -> Result<R, String> {
    STORE.with_borrow_mut(|store| {
        if store.is_none() {
            *store = Some(StoreSync::open(&mut WitHost, store_id)?);
        }
        let Some(sync) = store.as_mut() else { return Err("store failed to open".to_string()) };
        if sync.store_id() != store_id {
            return Err(format!("this instance serves store {:?}, not {store_id:?}", sync.store_id()));
        }
        Ok(f(sync))
    })
}

struct Component;

impl Guest for Component {
    fn opened(info: types::ConnectionInfo) -> Result<(), String> {
        let protocol = match info.protocol {
            types::Protocol::Livestore => Protocol::LiveStore,
            types::Protocol::Simple => Protocol::Simple,
        };
        with_store(&info.store_id, |sync| {
            sync.connection_opened(info.conn, protocol, info.authenticated, info.client_id);
            sync.save_snapshot(&mut WitHost, info.conn);
        })
    }

    fn resumed(info: types::ConnectionInfo, state: String) -> Result<(), String> {
        with_store(&info.store_id, |sync| {
            sync.connection_resumed(&mut WitHost, info.conn, &state)?;
            sync.save_snapshot(&mut WitHost, info.conn);
            Ok(())
        })?
    }

    fn frame(conn: u64, text: String) {
        STORE.with_borrow_mut(|store| {
            if let Some(sync) = store.as_mut() {
                sync.frame(&mut WitHost, conn, &text);
                sync.save_snapshot(&mut WitHost, conn);
            }
        })
    }

    fn closed(conn: u64) {
        STORE.with_borrow_mut(|store| {
            if let Some(sync) = store.as_mut() {
                sync.connection_closed(conn);
            }
        })
    }

    fn open_pulls(conn: u64) -> Option<u32> {
        STORE.with_borrow(|store| store.as_ref().and_then(|sync| sync.open_pulls(conn)))
    }

    fn log_advanced(store_id: String, head: i64) {
        STORE.with_borrow_mut(|store| {
            if let Some(sync) = store.as_mut().filter(|s| s.store_id() == store_id) {
                sync.log_advanced(&mut WitHost, head);
            }
        })
    }

    fn http_request(store_id: String, body: String) -> String {
        match with_store(&store_id, |sync| sync.http_request(&mut WitHost, &body)) {
            Ok(response) => response,
            Err(message) => {
                format!("[{}]", crate::encode::defect(&format!("store {store_id:?} could not be opened: {message}")))
            }
        }
    }
}

export!(Component);
