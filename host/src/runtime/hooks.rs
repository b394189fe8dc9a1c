//! `livestore:sync/hooks`: the component asks the operator's hooks (`crate::hooks`) about a
//! push or a pull, and hands committed batches to the after-push hooks.

use super::state::HostState;
use crate::bindings::livestore::sync::hooks::{HookKinds, Host};
use crate::bindings::{Caller, EventRow};
use crate::hooks::{HookContext, HookEvent, HookFn, HookPullRequest};

impl HostState {
    /// What hooks learn about `caller`; without a URL `clientId`, the batch's client is the one.
    fn hook_context(&self, caller: Caller, batch: &[EventRow]) -> HookContext {
        let ctx = match caller {
            Caller::Connection(conn) => self.hook_contexts.get(&conn),
            Caller::HttpRequest => self.http_context.as_ref(),
        };
        let mut ctx = ctx.cloned().unwrap_or_default();
        if ctx.client_id.is_none() {
            ctx.client_id = batch.first().map(|e| e.client_id.clone());
        }
        ctx
    }
}

fn hook_event(r: &EventRow) -> HookEvent {
    HookEvent {
        seq_num: r.seq_num,
        parent_seq_num: r.parent_seq_num,
        name: r.name.clone(),
        args: r.args.clone(),
        client_id: r.client_id.clone(),
        session_id: r.session_id.clone(),
    }
}

impl Host for HostState {
    fn loaded(&mut self) -> HookKinds {
        let mut kinds = HookKinds::empty();
        if let Some(h) = &self.io.hooks {
            if h.has(HookFn::OnPush) {
                kinds |= HookKinds::ON_PUSH;
            }
            if h.has(HookFn::OnPull) {
                kinds |= HookKinds::ON_PULL;
            }
            if h.has(HookFn::AfterPush) {
                kinds |= HookKinds::AFTER_PUSH;
            }
        }
        kinds
    }

    fn on_push(&mut self, caller: Caller, batch: Vec<EventRow>) -> Result<(), String> {
        let Some(hooks) = self.io.hooks.clone() else { return Ok(()) };
        let ctx = self.hook_context(caller, &batch);
        let events: Vec<HookEvent> = batch.iter().map(hook_event).collect();
        hooks.on_push(&ctx, &events).map_err(|e| e.message())
    }

    fn on_pull(&mut self, caller: Caller, cursor: i64, live: bool) -> Result<(), String> {
        let Some(hooks) = self.io.hooks.clone() else { return Ok(()) };
        hooks.on_pull(&self.hook_context(caller, &[]), HookPullRequest { cursor, live }).map_err(|e| e.message())
    }

    fn after_push(&mut self, caller: Caller, batch: Vec<EventRow>) {
        let Some(hooks) = self.io.hooks.clone() else { return };
        let ctx = self.hook_context(caller, &batch);
        let created_at = batch.first().map(|e| e.created_at.clone()).unwrap_or_default();
        hooks.after_push(ctx, batch.iter().map(hook_event).collect(), created_at);
    }
}
