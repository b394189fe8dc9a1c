//! The `livestore:hooks` WIT bound for the host: the imports a hook may use (log, config,
//! scratch) and, per loaded hook, the subset of the four exports it has.

use super::sandbox::{HookState, Sandbox};
use super::types::{HookContext, HookError, HookFn};
use anyhow::{bail, Context, Result};
use std::path::Path;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

wasmtime::component::bindgen!({ world: "hook", path: "../wit/hooks" });

use exports::livestore::hooks::{after_push, on_pull, on_push, validate_payload};
use livestore::hooks::{config, log, scratch, types};

pub use types::{Event as HookEvent, PullRequest as HookPullRequest};

pub fn add_imports(linker: &mut Linker<HookState>) -> Result<()> {
    log::add_to_linker::<HookState, HasSelf<HookState>>(linker, |s| s).map_err(anyhow::Error::from)?;
    config::add_to_linker::<HookState, HasSelf<HookState>>(linker, |s| s).map_err(anyhow::Error::from)?;
    scratch::add_to_linker::<HookState, HasSelf<HookState>>(linker, |s| s).map_err(anyhow::Error::from)?;
    Ok(())
}

impl types::Host for HookState {}

impl log::Host for HookState {
    fn log(&mut self, level: log::Level, message: String) {
        if self.log_lines == 0 {
            return;
        }
        self.log_lines -= 1;
        let mut message = message;
        if message.len() > self.max_output {
            let mut cut = self.max_output;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (hook, store) = (self.hook.as_str(), self.store_id.as_str());
        match level {
            log::Level::Debug => tracing::debug!(target: "livestore_sync::hook", hook, store, "{message}"),
            log::Level::Info => tracing::info!(target: "livestore_sync::hook", hook, store, "{message}"),
            log::Level::Warn => tracing::warn!(target: "livestore_sync::hook", hook, store, "{message}"),
            log::Level::Error => tracing::error!(target: "livestore_sync::hook", hook, store, "{message}"),
        }
    }
}

impl config::Host for HookState {
    fn get(&mut self, name: String) -> Option<String> {
        self.vars.get(&name).cloned()
    }
}

impl scratch::Host for HookState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.scratch.get(&self.hook, &self.store_id, &key)
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), String> {
        self.scratch.set(&self.hook, &self.store_id, key, value, ttl_ms)
    }

    fn delete(&mut self, key: String) {
        self.scratch.delete(&self.hook, &self.store_id, &key)
    }
}

/// A checked hook component: its pre-linked instance and the exports it has.
pub struct LoadedHook {
    pub name: String,
    pre: InstancePre<HookState>,
    validate_payload: Option<validate_payload::GuestIndices>,
    on_push: Option<on_push::GuestIndices>,
    on_pull: Option<on_pull::GuestIndices>,
    after_push: Option<after_push::GuestIndices>,
    exports: Vec<HookFn>,
}

const INTERFACES: [(&str, HookFn); 4] = [
    ("livestore:hooks/validate-payload@0.1.0", HookFn::ValidatePayload),
    ("livestore:hooks/on-push@0.1.0", HookFn::OnPush),
    ("livestore:hooks/on-pull@0.1.0", HookFn::OnPull),
    ("livestore:hooks/after-push@0.1.0", HookFn::AfterPush),
];

impl LoadedHook {
    pub fn load(sandbox: &Sandbox, name: &str, path: &Path) -> Result<LoadedHook> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let component = Component::new(&sandbox.engine, &bytes)
            .map_err(anyhow::Error::from)
            .context("not a WebAssembly component (build hooks for wasm32-wasip2)")?;
        let pre = sandbox.linker.instantiate_pre(&component).map_err(anyhow::Error::from).context(
            "it imports something hooks may not use (allowed: livestore:hooks/{log,config,scratch}, WASI clocks, random, wasi:http)",
        )?;
        let present = |iface: &str| component.get_export_index(None, iface).is_some();
        let validate_payload = present(INTERFACES[0].0)
            .then(|| validate_payload::GuestIndices::new(&pre))
            .transpose()
            .map_err(anyhow::Error::from)?;
        let on_push = present(INTERFACES[1].0)
            .then(|| on_push::GuestIndices::new(&pre))
            .transpose()
            .map_err(anyhow::Error::from)?;
        let on_pull = present(INTERFACES[2].0)
            .then(|| on_pull::GuestIndices::new(&pre))
            .transpose()
            .map_err(anyhow::Error::from)?;
        let after_push = present(INTERFACES[3].0)
            .then(|| after_push::GuestIndices::new(&pre))
            .transpose()
            .map_err(anyhow::Error::from)?;
        let exports: Vec<HookFn> = INTERFACES.iter().filter(|(i, _)| present(i)).map(|(_, f)| *f).collect();
        if exports.is_empty() {
            bail!(
                "it is not a hook: it exports none of {}",
                INTERFACES.iter().map(|(i, _)| *i).collect::<Vec<_>>().join(", ")
            );
        }
        let hook = LoadedHook { name: name.to_string(), pre, validate_payload, on_push, on_pull, after_push, exports };
        hook.check_types(sandbox)?;
        Ok(hook)
    }

    /// Instantiate once and bind every export, so a wrong signature fails at start-up.
    fn check_types(&self, sandbox: &Sandbox) -> Result<()> {
        let result = sandbox.call(&self.name, "load", "", &self.pre, |store, instance| {
            if let Some(i) = &self.validate_payload {
                i.load(&mut *store, instance)?;
            }
            if let Some(i) = &self.on_push {
                i.load(&mut *store, instance)?;
            }
            if let Some(i) = &self.on_pull {
                i.load(&mut *store, instance)?;
            }
            if let Some(i) = &self.after_push {
                i.load(&mut *store, instance)?;
            }
            Ok(Ok(()))
        });
        match result {
            Ok(()) => Ok(()),
            Err(e) => bail!("its exports do not match livestore:hooks@0.1.0: {}", e.message()),
        }
    }

    pub fn exports(&self) -> &[HookFn] {
        &self.exports
    }

    pub fn validate_payload(
        &self,
        sandbox: &Sandbox,
        store_id: &str,
        payload: Option<&str>,
        headers: &[(String, String)],
    ) -> Result<(), HookError> {
        let Some(indices) = &self.validate_payload else { return Ok(()) };
        sandbox.call(&self.name, HookFn::ValidatePayload.name(), store_id, &self.pre, |store, instance| {
            indices.load(&mut *store, instance)?.call_validate_payload(store, store_id, payload, headers)
        })
    }

    pub fn on_push(&self, sandbox: &Sandbox, ctx: &HookContext, batch: &[HookEvent]) -> Result<(), HookError> {
        let Some(indices) = &self.on_push else { return Ok(()) };
        let context = wit_context(ctx);
        sandbox.call(&self.name, HookFn::OnPush.name(), &ctx.store_id, &self.pre, |store, instance| {
            indices.load(&mut *store, instance)?.call_on_push(store, &context, batch)
        })
    }

    pub fn on_pull(&self, sandbox: &Sandbox, ctx: &HookContext, request: HookPullRequest) -> Result<(), HookError> {
        let Some(indices) = &self.on_pull else { return Ok(()) };
        let context = wit_context(ctx);
        sandbox.call(&self.name, HookFn::OnPull.name(), &ctx.store_id, &self.pre, |store, instance| {
            indices.load(&mut *store, instance)?.call_on_pull(store, &context, request)
        })
    }

    pub fn after_push(
        &self,
        sandbox: &Sandbox,
        ctx: &HookContext,
        batch: &[HookEvent],
        created_at: &str,
    ) -> Result<(), HookError> {
        let Some(indices) = &self.after_push else { return Ok(()) };
        let context = wit_context(ctx);
        sandbox.call(&self.name, HookFn::AfterPush.name(), &ctx.store_id, &self.pre, |store, instance| {
            indices.load(&mut *store, instance)?.call_after_push(store, &context, batch, created_at)
        })
    }
}

fn wit_context(ctx: &HookContext) -> types::Context {
    types::Context {
        store_id: ctx.store_id.clone(),
        client_id: ctx.client_id.clone(),
        payload: ctx.payload.clone(),
        headers: ctx.headers.clone(),
    }
}
