//! What callers and the hook machinery share: settings, the caller's context, the four
//! functions, and how a call can fail.

use std::collections::HashMap;
use std::time::Duration;

/// How hooks are loaded and limited (`--hook…` flags).
#[derive(Debug, Clone)]
pub struct HookSettings {
    /// `path.wasm` or `name=path.wasm`.
    pub specs: Vec<String>,
    /// CPU time one call may use.
    pub cpu_deadline: Duration,
    /// Wall-clock time one call may take, outbound HTTP included.
    pub wall_deadline: Duration,
    pub memory_limit: usize,
    /// The longest error message (or log line) a hook may return.
    pub max_output_bytes: usize,
    /// Hosts outbound HTTP may reach: `host`, `host:port` or `*.domain`.
    pub allow_hosts: Vec<String>,
    /// Connect and first-byte timeout of each outbound HTTP request.
    pub http_timeout: Duration,
    /// Values hooks read through `config.get`.
    pub vars: HashMap<String, String>,
    /// Batches waiting for after-push hooks before new ones are dropped (and counted).
    pub after_push_queue: usize,
}

impl Default for HookSettings {
    fn default() -> Self {
        use crate::defaults;
        HookSettings {
            specs: Vec::new(),
            cpu_deadline: Duration::from_millis(defaults::HOOK_CPU_MS),
            wall_deadline: Duration::from_millis(defaults::HOOK_WALL_MS),
            memory_limit: defaults::HOOK_MEMORY_MIB << 20,
            max_output_bytes: defaults::HOOK_MAX_OUTPUT_BYTES,
            allow_hosts: Vec::new(),
            http_timeout: Duration::from_millis(defaults::HOOK_HTTP_TIMEOUT_MS),
            vars: HashMap::new(),
            after_push_queue: defaults::HOOK_AFTER_PUSH_QUEUE,
        }
    }
}

/// Who is asking, for a hook.
#[derive(Debug, Clone, Default)]
pub struct HookContext {
    pub store_id: String,
    pub client_id: Option<String>,
    pub payload: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// Which of the four functions a hook exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFn {
    ValidatePayload,
    OnPush,
    OnPull,
    AfterPush,
}

impl HookFn {
    pub fn name(self) -> &'static str {
        match self {
            HookFn::ValidatePayload => "validate-payload",
            HookFn::OnPush => "on-push",
            HookFn::OnPull => "on-pull",
            HookFn::AfterPush => "after-push",
        }
    }
}

/// A call that did not return normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// The hook said no; its message.
    Rejected(String),
    /// The hook failed (trap, deadline, memory, output limit); names the hook and the kind.
    Failed { hook: String, kind: &'static str, message: String },
}

impl HookError {
    /// The text a client sees.
    pub fn message(&self) -> String {
        match self {
            HookError::Rejected(m) => m.clone(),
            HookError::Failed { hook, message, .. } => format!("hook {hook:?} failed: {message}"),
        }
    }
}
