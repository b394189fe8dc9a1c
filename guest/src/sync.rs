//! One store's sync state machine, as the component instance for a store holds it: the
//! protocol-neutral core, with each connection's frames dispatched to its protocol.

use crate::core::{Conn, Core, Protocol};
use crate::host::Host;

pub struct StoreSync {
    core: Core,
}

impl StoreSync {
    /// Open the store: load (or create) its head and backend id.
    pub fn open(host: &mut dyn Host, store_id: &str) -> Result<Self, String> {
        Ok(StoreSync { core: Core::open(host, store_id)? })
    }

    pub fn store_id(&self) -> &str {
        &self.core.store_id
    }

    pub fn head(&self) -> i64 {
        self.core.state.head
    }

    pub fn connection_opened(&mut self, conn: u64, protocol: Protocol, authenticated: bool, client_id: Option<String>) {
        let client_id = client_id.unwrap_or_else(|| format!("simple-{conn}"));
        let state =
            Conn { protocol, authenticated, client_id, pulls: Vec::new(), saved: String::new(), ignored: Vec::new() };
        self.core.conns.insert(conn, state);
    }

    /// Re-create a connection from its last snapshot after the instance was rebuilt.
    pub fn connection_resumed(&mut self, host: &mut dyn Host, conn: u64, saved: &str) -> Result<(), String> {
        self.core.resume(host, conn, saved)
    }

    pub fn connection_closed(&mut self, conn: u64) {
        self.core.conns.remove(&conn);
    }

    /// Pull streams `conn` has open (catching up or live): what the admin API shows.
    pub fn open_pulls(&self, conn: u64) -> Option<u32> {
        self.core.conns.get(&conn).map(|c| u32::try_from(c.pulls.len()).unwrap_or(u32::MAX))
    }

    /// Handle one text frame from `conn`.
    pub fn frame(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        match self.core.conns.get(&conn).map(|c| c.protocol) {
            Some(Protocol::LiveStore) => self.core.livestore_frame(host, conn, text),
            Some(Protocol::Simple) => self.core.simple_frame(host, conn, text),
            None => {}
        }
    }

    /// Another writer committed up to `head` (`handler.log-advanced`): deliver what this
    /// instance has not seen to its live pulls.
    pub fn log_advanced(&mut self, host: &mut dyn Host, head: i64) {
        if let Err(message) = self.core.advance_to(host, head) {
            host.log(crate::host::LogLevel::Warn, &format!("delivering events another writer committed: {message}"));
        }
    }

    /// One LiveStore HTTP-transport request: the JSON array of every response message.
    pub fn http_request(&mut self, host: &mut dyn Host, body: &str) -> String {
        self.core.livestore_http_request(host, body)
    }

    /// Hand the host `conn`'s resumable state and the frames it may drop unread, each if it
    /// changed since the host last got it. Called at the end of every call about `conn`.
    pub fn save_snapshot(&mut self, host: &mut dyn Host, conn: u64) {
        self.core.save_snapshot(host, conn);
        self.core.declare_ignored_frames(host, conn);
    }
}
