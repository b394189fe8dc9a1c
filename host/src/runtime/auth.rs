//! `livestore:sync/auth`: the token check for clients that authenticate in a message.

use super::state::HostState;
use crate::bindings::livestore::sync::auth::Host;

impl Host for HostState {
    fn check_token(&mut self, token: String) -> bool {
        match &self.io.auth_token {
            None => true,
            Some(expected) => crate::auth::token_matches(Some(&token), expected),
        }
    }
}
