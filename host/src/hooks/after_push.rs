//! after-push hooks run on a worker thread, in commit order, off the push's path: the ack
//! never waits for them. A full queue drops the batch for the hooks (never for the log) and
//! counts it; every failure is logged and counted.

use super::bindings::HookEvent;
use super::bindings::LoadedHook;
use super::sandbox::Sandbox;
use super::types::{HookContext, HookError};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

pub struct AfterPushJob {
    pub ctx: HookContext,
    pub batch: Vec<HookEvent>,
    pub created_at: String,
}

pub struct Worker {
    tx: SyncSender<AfterPushJob>,
    /// The hooks exporting after-push, fixed at start-up.
    hooks: Arc<Vec<Arc<LoadedHook>>>,
}

impl Worker {
    pub fn start(sandbox: Arc<Sandbox>, hooks: Vec<Arc<LoadedHook>>, capacity: usize) -> Worker {
        let hooks = Arc::new(hooks);
        let (tx, rx) = sync_channel::<AfterPushJob>(capacity.max(1));
        let observers = hooks.clone();
        let spawned = std::thread::Builder::new().name("after-push".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                for hook in observers.iter() {
                    match hook.after_push(&sandbox, &job.ctx, &job.batch, &job.created_at) {
                        Ok(()) => {}
                        // Failures were counted and logged by the sandbox.
                        Err(HookError::Failed { .. }) => {}
                        Err(HookError::Rejected(message)) => {
                            metrics::counter!(crate::telemetry::HOOK_FAILURES, "hook" => hook.name.clone(), "kind" => "error")
                                .increment(1);
                            tracing::warn!(hook = hook.name, store_id = job.ctx.store_id, "after-push hook returned an error: {message}");
                        }
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!("could not start the after-push worker: {e}");
        }
        Worker { tx, hooks }
    }

    pub fn submit(&self, job: AfterPushJob) {
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                for hook in self.hooks.iter() {
                    metrics::counter!(crate::telemetry::HOOK_FAILURES, "hook" => hook.name.clone(), "kind" => "queue-full")
                        .increment(1);
                }
                tracing::warn!(
                    store_id = job.ctx.store_id,
                    events = job.batch.len(),
                    "after-push queue full: hooks skip this committed batch"
                );
            }
        }
    }
}
