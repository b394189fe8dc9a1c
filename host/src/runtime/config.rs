//! `livestore:sync/config`: the server settings the component reads once per store.

use super::state::HostState;
use crate::bindings::livestore::sync::config::Host;
use crate::bindings::Settings;

impl Host for HostState {
    fn get(&mut self) -> Settings {
        Settings { max_push_events: self.io.max_push_events }
    }
}
