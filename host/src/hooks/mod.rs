//! Operator hook components (`wit/hooks/hooks.wit`): loaded from `--hook` paths, checked at
//! start-up, and called sandboxed (see `sandbox.rs`) at connect (validate-payload), before a
//! push is admitted (on-push), before a pull is served (on-pull) and after a commit
//! (after-push, on a worker thread off the push's path).

mod after_push;
mod bindings;
mod http;
mod sandbox;
mod scratch;
mod types;

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use after_push::AfterPushJob;
pub use bindings::{HookEvent, HookPullRequest};
pub use http::host_allowed;
use sandbox::Sandbox;
#[cfg(test)]
pub(crate) use scratch::Scratch;
pub use types::{HookContext, HookError, HookFn, HookSettings};

/// The scratch space's bounds: key bytes, value bytes, keys per hook and store.
pub const fn scratch_limits() -> (usize, usize, usize) {
    (scratch::MAX_KEY_BYTES, scratch::MAX_VALUE_BYTES, scratch::MAX_KEYS)
}

/// The loaded hooks, in `--hook` order.
pub struct Hooks {
    sandbox: Arc<Sandbox>,
    hooks: Vec<Arc<bindings::LoadedHook>>,
    after_push: Option<after_push::Worker>,
}

impl Hooks {
    /// Load and check every hook; `None` when none is configured.
    pub fn load(settings: &HookSettings) -> Result<Option<Arc<Hooks>>> {
        if settings.specs.is_empty() {
            return Ok(None);
        }
        let sandbox = Arc::new(Sandbox::new(settings, bindings::add_imports)?);
        let mut hooks = Vec::new();
        let mut names = std::collections::HashSet::new();
        for spec in &settings.specs {
            let (name, path) = parse_spec(spec);
            if !names.insert(name.clone()) {
                bail!("two hooks are named {name:?}; name one of them: --hook other={}", path.display());
            }
            let hook = bindings::LoadedHook::load(&sandbox, &name, &path)
                .with_context(|| format!("loading hook {name:?} from {}", path.display()))?;
            tracing::info!(hook = name, path = %path.display(), exports = ?hook.exports(), "hook loaded");
            hooks.push(Arc::new(hook));
        }
        let mut loaded = Hooks { sandbox, hooks, after_push: None };
        if loaded.has(HookFn::AfterPush) {
            let observers = loaded.exporting(HookFn::AfterPush).cloned().collect();
            let worker = after_push::Worker::start(loaded.sandbox.clone(), observers, settings.after_push_queue);
            loaded.after_push = Some(worker);
        }
        Ok(Some(Arc::new(loaded)))
    }

    /// The hooks that export `f`, in `--hook` order.
    fn exporting(&self, f: HookFn) -> impl Iterator<Item = &Arc<bindings::LoadedHook>> {
        self.hooks.iter().filter(move |h| h.exports().contains(&f))
    }

    pub fn has(&self, f: HookFn) -> bool {
        self.exporting(f).next().is_some()
    }

    /// Every validate-payload hook in order; the first error refuses the connection.
    pub fn validate_payload(
        &self,
        store_id: &str,
        payload: Option<&str>,
        headers: &[(String, String)],
    ) -> Result<(), HookError> {
        for hook in self.exporting(HookFn::ValidatePayload) {
            hook.validate_payload(&self.sandbox, store_id, payload, headers)?;
        }
        Ok(())
    }

    pub fn on_push(&self, ctx: &HookContext, batch: &[HookEvent]) -> Result<(), HookError> {
        for hook in self.exporting(HookFn::OnPush) {
            hook.on_push(&self.sandbox, ctx, batch)?;
        }
        Ok(())
    }

    pub fn on_pull(&self, ctx: &HookContext, request: HookPullRequest) -> Result<(), HookError> {
        for hook in self.exporting(HookFn::OnPull) {
            hook.on_pull(&self.sandbox, ctx, request)?;
        }
        Ok(())
    }

    /// Queue a committed batch for the after-push hooks; returns at once.
    pub fn after_push(&self, ctx: HookContext, batch: Vec<HookEvent>, created_at: String) {
        if let Some(worker) = &self.after_push {
            worker.submit(AfterPushJob { ctx, batch, created_at });
        }
    }
}

/// `name=path` or `path` (named after the file stem).
fn parse_spec(spec: &str) -> (String, PathBuf) {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => (name.to_string(), PathBuf::from(path)),
        _ => {
            let path = PathBuf::from(spec);
            let name = Path::new(spec).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            (name, path)
        }
    }
}

/// `--hook-var NAME=VALUE`, or `NAME` alone for the server's environment variable of that name.
pub fn parse_vars(specs: &[String], env: impl Fn(&str) -> Option<String>) -> Result<HashMap<String, String>> {
    let mut vars = HashMap::new();
    for spec in specs {
        match spec.split_once('=') {
            Some((name, value)) => vars.insert(name.to_string(), value.to_string()),
            None => match env(spec) {
                Some(value) => vars.insert(spec.clone(), value),
                None => bail!("--hook-var {spec}: the environment has no {spec} (give NAME=VALUE)"),
            },
        };
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_specs_name_the_hook() {
        assert_eq!(
            parse_spec("hooks/static_token.wasm"),
            ("static_token".into(), PathBuf::from("hooks/static_token.wasm"))
        );
        assert_eq!(parse_spec("auth=/x/y.wasm"), ("auth".into(), PathBuf::from("/x/y.wasm")));
    }

    #[test]
    fn hook_vars_come_from_flags_or_the_environment() {
        let env = |k: &str| (k == "LIVESTORE_SECRET").then(|| "s3cret".to_string());
        let vars = parse_vars(&["A=1".into(), "LIVESTORE_SECRET".into()], env).expect("vars");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["LIVESTORE_SECRET"], "s3cret");
        assert!(parse_vars(&["MISSING".into()], env).is_err());
    }
}
