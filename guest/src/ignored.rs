//! Frames the host may drop unread. With many live pullers, every broadcast chunk brings back
//! one Ack per puller, and each Ack of a caught-up live stream changes nothing here; handing
//! each to the component costs the host a queue hop and a call per puller. So the component
//! tells the host, per connection, the exact texts of those Acks (`connections.set-ignored-frames`),
//! and the host drops an incoming frame equal to one of them. A frame that differs in any byte
//! (other key order, spacing, escaping) still arrives and gets the same no-op.
//!
//! Why dropping is safe: a stream's Ack is a no-op once the stream is live, caught up and not
//! waiting for an Ack (`pull.rs`: `ack` returns at once; broadcasts never wait for Acks). The set
//! of such streams changes only while the component handles that connection's own frames (an
//! Ack that completes the catch-up, an Interrupt, a new Pull), and the list is renewed at the
//! end of that same call, before any later frame of the connection is handled. A stream that
//! ends leaves the list in the call that ends it, so a new pull reusing its request id is never
//! covered by a stale entry.

use crate::core::{Core, Protocol};
use crate::encode::json_str;
use crate::host::Host;

/// The Ack a LiveStore client sends for a chunk of stream `request_id` (as its JSON encoder
/// writes it).
pub(crate) fn ack_frame(request_id: &str) -> String {
    format!(r#"{{"_tag":"Ack","requestId":{}}}"#, json_str(request_id))
}

impl Core {
    /// Tell the host `conn`'s ignorable frames if they changed since it was last told.
    pub(crate) fn declare_ignored_frames(&mut self, host: &mut dyn Host, conn: u64) {
        let Some(state) = self.conns.get_mut(&conn) else { return };
        let frames: Vec<String> = if state.protocol == Protocol::LiveStore {
            state
                .pulls
                .iter()
                .filter(|p| p.live && p.caught_up && !p.awaiting_ack)
                .map(|p| ack_frame(&p.request_id))
                .collect()
        } else {
            Vec::new()
        };
        if frames != state.ignored {
            host.set_ignored_frames(conn, &frames);
            state.ignored = frames;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ack_frame;

    #[test]
    fn the_ack_text_is_what_the_client_writes() {
        assert_eq!(ack_frame("7"), r#"{"_tag":"Ack","requestId":"7"}"#);
        assert_eq!(ack_frame("a\"b"), r#"{"_tag":"Ack","requestId":"a\"b"}"#);
    }
}
