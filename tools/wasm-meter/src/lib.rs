//! Per-call bounds for WebAssembly run by a JavaScript engine, which offers none of its own.
//!
//! A hook running natively gets a CPU deadline (wasmtime epochs) and a memory cap (a resource
//! limiter). A hook running in a Cloudflare Worker is plain `WebAssembly` in V8: nothing can
//! interrupt a loop from outside (the isolate is single-threaded, and `Date.now()` does not
//! advance while code runs), and memory grows until the isolate's own limit. So the bounds are
//! compiled into the module:
//!
//! - **fuel**: an exported mutable `i64` global, `livestore_fuel`, decremented at every function
//!   entry and every loop iteration; below zero the module executes `unreachable`. Work between
//!   two decrements is straight-line code, so a budget of N bounds a call to N function bodies'
//!   worth of instructions.
//! - **memory cap**: every `memory.grow` of memory 0 goes through an added function that refuses
//!   (returns -1, as an engine out of memory would) past `livestore_memory_max_pages` pages and
//!   sets `livestore_memory_denied` to 1, so the caller can tell a cap from any other trap.
//!
//! The embedder sets `livestore_fuel` (and clears `livestore_memory_denied`) before each call.
//! Existing indices never move: the added type, globals and function come after all others.

use anyhow::{bail, ensure, Context, Result};
use std::ops::Range;
use wasmparser::{Encoding, Operator, Parser, Payload, TypeRef, Validator, WasmFeatures};

/// Export names the embedder looks for.
pub const FUEL_EXPORT: &str = "livestore_fuel";
pub const MAX_PAGES_EXPORT: &str = "livestore_memory_max_pages";
pub const DENIED_EXPORT: &str = "livestore_memory_denied";

/// Fuel a freshly instantiated module starts with: enough for start functions and
/// initialisation, after which the embedder sets a budget per call.
const INITIAL_FUEL: i64 = 1 << 40;
/// 64 MiB, the native default cap, until the embedder says otherwise.
const INITIAL_MAX_PAGES: i64 = 1024;

const TYPE: u8 = 1;
const FUNCTION: u8 = 3;
const GLOBAL: u8 = 6;
const EXPORT: u8 = 7;
const CODE: u8 = 10;

/// Where a section goes among the others (the binary format fixes their order).
fn rank(id: u8) -> u8 {
    match id {
        1..=5 => id,
        13 => 6, // tag: after memory, before global
        6..=9 => id + 1,
        12 => 11, // data count: after element, before code
        10 => 12,
        11 => 13,
        _ => 0, // custom sections stay where they are
    }
}

/// What the module declares before its code.
#[derive(Default)]
struct Shape {
    types: u32,
    imported_funcs: u32,
    defined_funcs: u32,
    imported_globals: u32,
    defined_globals: u32,
    memories: u32,
    has_code: bool,
    already_metered: bool,
    /// Exports one of the names this pass adds, without being metered.
    clashes: bool,
    /// Memory 0 is 64-bit (hooks are wasm32; the added grow check is 32-bit).
    memory64: bool,
}

fn shape(wasm: &[u8]) -> Result<Shape> {
    let mut s = Shape::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(r) => {
                for group in r {
                    s.types += u32::try_from(group?.types().len())?;
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    match import?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => s.imported_funcs += 1,
                        TypeRef::Global(_) => s.imported_globals += 1,
                        TypeRef::Memory(m) => {
                            s.memory64 |= s.memories == 0 && m.memory64;
                            s.memories += 1;
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => s.defined_funcs = r.count(),
            Payload::GlobalSection(r) => s.defined_globals = r.count(),
            Payload::MemorySection(r) => {
                for memory in r {
                    let memory = memory?;
                    s.memory64 |= s.memories == 0 && memory.memory64;
                    s.memories += 1;
                }
            }
            Payload::ExportSection(r) => {
                for export in r {
                    let name = export?.name;
                    s.already_metered |= name == FUEL_EXPORT;
                    s.clashes |= name == MAX_PAGES_EXPORT || name == DENIED_EXPORT;
                }
            }
            Payload::CodeSectionStart { count, .. } => s.has_code = count > 0,
            Payload::Version { encoding: Encoding::Component, .. } => {
                bail!("this is a component: meter the core modules that `jco transpile` writes out")
            }
            _ => {}
        }
    }
    Ok(s)
}

fn leb_u32(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn leb_i64(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

fn name(out: &mut Vec<u8>, s: &str) -> Result<()> {
    leb_u32(out, u32::try_from(s.len())?);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn section(out: &mut Vec<u8>, id: u8, content: &[u8]) -> Result<()> {
    out.push(id);
    leb_u32(out, u32::try_from(content.len())?);
    out.extend_from_slice(content);
    Ok(())
}

/// A section's entries (after its count) with `extra` more entries appended.
fn extended(
    wasm: &[u8],
    content: Range<usize>,
    count: u32,
    entries_start: usize,
    added: u32,
    extra: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    leb_u32(&mut out, count.checked_add(added).context("section count overflows")?);
    out.extend_from_slice(&wasm[entries_start..content.end]);
    out.extend_from_slice(extra);
    Ok(out)
}

/// Indices of what the pass adds.
struct Added {
    fuel: u32,
    max_pages: u32,
    denied: u32,
    grow_type: u32,
    grow_func: Option<u32>,
}

/// `global.get fuel; i64.const 1; i64.sub; global.set fuel; global.get fuel; i64.const 0;
/// i64.lt_s; if; unreachable; end`: stack-neutral, so valid at any function or loop start.
fn fuel_check(out: &mut Vec<u8>, fuel: u32) {
    out.push(0x23);
    leb_u32(out, fuel);
    out.extend_from_slice(&[0x42, 0x01, 0x7d, 0x24]);
    leb_u32(out, fuel);
    out.push(0x23);
    leb_u32(out, fuel);
    out.extend_from_slice(&[0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b]);
}

/// `(func (param $pages i32) (result i32))`: grow memory 0 unless that passes the cap.
fn grow_body(a: &Added) -> Vec<u8> {
    let mut b = vec![0x00]; // no locals
                            // pages + memory.size (as i64, so nothing wraps) > max → refuse
    b.extend_from_slice(&[0x20, 0x00, 0xad, 0x3f, 0x00, 0xad, 0x7c, 0x23]);
    leb_u32(&mut b, a.max_pages);
    b.extend_from_slice(&[0x56, 0x04, 0x40, 0x41, 0x01, 0x24]);
    leb_u32(&mut b, a.denied);
    b.extend_from_slice(&[0x41, 0x7f, 0x0f, 0x0b]);
    b.extend_from_slice(&[0x20, 0x00, 0x40, 0x00, 0x0b]);
    b
}

fn metered_body(wasm: &[u8], body: &wasmparser::FunctionBody, a: &Added) -> Result<Vec<u8>> {
    let range = body.range();
    let mut ops = body.get_operators_reader()?;
    let ops_start = ops.original_position();
    let mut out = wasm[range.start..ops_start].to_vec(); // locals, as they were
    fuel_check(&mut out, a.fuel);
    let mut copied = ops_start;
    let mut after_loop = false;
    while !ops.eof() {
        let (op, at) = ops.read_with_offset()?;
        if after_loop {
            out.extend_from_slice(&wasm[copied..at]);
            copied = at;
            fuel_check(&mut out, a.fuel);
            after_loop = false;
        }
        match op {
            Operator::Loop { .. } => after_loop = true,
            Operator::MemoryGrow { mem: 0 } => {
                let func = a.grow_func.context("memory.grow without a memory")?;
                out.extend_from_slice(&wasm[copied..at]);
                out.push(0x10);
                leb_u32(&mut out, func);
                copied = ops.original_position();
            }
            _ => {}
        }
    }
    out.extend_from_slice(&wasm[copied..range.end]);
    let mut sized = Vec::with_capacity(out.len() + 5);
    leb_u32(&mut sized, u32::try_from(out.len())?);
    sized.extend_from_slice(&out);
    Ok(sized)
}

/// The module with fuel and a memory cap compiled in; `None` when it has no code to meter
/// (the small shim modules `jco` writes) or is metered already.
pub fn meter(wasm: &[u8]) -> Result<Option<Vec<u8>>> {
    let s = shape(wasm)?;
    if !s.has_code || s.already_metered {
        return Ok(None);
    }
    ensure!(!s.clashes, "the module already exports {MAX_PAGES_EXPORT} or {DENIED_EXPORT}");
    ensure!(!s.memory64, "memory 0 is 64-bit (memory64): hooks are built for wasm32");
    let first_global = s.imported_globals + s.defined_globals;
    let a = Added {
        fuel: first_global,
        max_pages: first_global + 1,
        denied: first_global + 2,
        grow_type: s.types,
        grow_func: (s.memories > 0).then_some(s.imported_funcs + s.defined_funcs),
    };
    let grows = u32::from(a.grow_func.is_some());

    let mut new_globals = Vec::new();
    for init in [INITIAL_FUEL, INITIAL_MAX_PAGES] {
        new_globals.extend_from_slice(&[0x7e, 0x01, 0x42]); // (mut i64) (i64.const …)
        leb_i64(&mut new_globals, init);
        new_globals.push(0x0b);
    }
    new_globals.extend_from_slice(&[0x7f, 0x01, 0x41, 0x00, 0x0b]);
    let mut new_exports = Vec::new();
    for (export, index) in [(FUEL_EXPORT, a.fuel), (MAX_PAGES_EXPORT, a.max_pages), (DENIED_EXPORT, a.denied)] {
        name(&mut new_exports, export)?;
        new_exports.push(0x03);
        leb_u32(&mut new_exports, index);
    }

    let mut out = wasm[..8].to_vec();
    let (mut wrote_globals, mut wrote_exports) = (false, false);
    let mut last_rank = 0;
    let mut code: Option<(Vec<u8>, u32)> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if let Payload::CodeSectionEntry(body) = &payload {
            let (bytes, n) = code.as_mut().context("a function body outside the code section")?;
            bytes.extend_from_slice(&metered_body(wasm, body, &a)?);
            *n += 1;
            continue;
        }
        let next = payload.as_section();
        if next.is_none() && !matches!(payload, Payload::End(_)) {
            continue;
        }
        if let Some((bytes, n)) = code.take() {
            // The code section ends where the next section (or the module) starts.
            let mut content = Vec::new();
            leb_u32(&mut content, n + grows);
            content.extend_from_slice(&bytes);
            if a.grow_func.is_some() {
                let grow = grow_body(&a);
                leb_u32(&mut content, u32::try_from(grow.len())?);
                content.extend_from_slice(&grow);
            }
            section(&mut out, CODE, &content)?;
        }
        let Some((id, content)) = next else { break };
        let r = rank(id);
        if r != 0 {
            // Past where the globals or exports belong: add those sections if the module had none.
            if !wrote_globals && r > rank(GLOBAL) {
                section(&mut out, GLOBAL, &extended(&[], 0..0, 0, 0, 3, &new_globals)?)?;
                wrote_globals = true;
            }
            if !wrote_exports && r > rank(EXPORT) {
                section(&mut out, EXPORT, &extended(&[], 0..0, 0, 0, 3, &new_exports)?)?;
                wrote_exports = true;
            }
            ensure!(r >= last_rank, "sections out of order");
            last_rank = r;
        }
        match payload {
            Payload::TypeSection(r) => {
                let ty: &[u8] = if grows == 1 { &[0x60, 0x01, 0x7f, 0x01, 0x7f] } else { &[] };
                section(&mut out, TYPE, &extended(wasm, content, r.count(), r.original_position(), grows, ty)?)?;
            }
            Payload::FunctionSection(r) => {
                let mut ty = Vec::new();
                if grows == 1 {
                    leb_u32(&mut ty, a.grow_type);
                }
                section(&mut out, FUNCTION, &extended(wasm, content, r.count(), r.original_position(), grows, &ty)?)?;
            }
            Payload::GlobalSection(r) => {
                section(
                    &mut out,
                    GLOBAL,
                    &extended(wasm, content, r.count(), r.original_position(), 3, &new_globals)?,
                )?;
                wrote_globals = true;
            }
            Payload::ExportSection(r) => {
                section(
                    &mut out,
                    EXPORT,
                    &extended(wasm, content, r.count(), r.original_position(), 3, &new_exports)?,
                )?;
                wrote_exports = true;
            }
            Payload::CodeSectionStart { .. } => code = Some((Vec::new(), 0)),
            // DWARF and code-offset hints describe the code before metering moved it.
            Payload::CustomSection(c) if c.name().starts_with(".debug_") || c.name().starts_with("metadata.code.") => {}
            _ => section(&mut out, id, &wasm[content])?,
        }
    }
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(&out)
        .context("the metered module does not validate (a bug in wasm-meter)")?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(memory 1) (func $spin (loop (br 0))) (func $grow (param i32) (result i32)
    /// (memory.grow (local.get 0)))`, exported as "spin" and "grow".
    pub const SPIN_AND_GROW: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x09, 0x02, 0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f, // types
        0x03, 0x03, 0x02, 0x00, 0x01, // functions
        0x05, 0x03, 0x01, 0x00, 0x01, // memory
        0x07, 0x0f, 0x02, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, 0x04, b'g', b'r', b'o', b'w', 0x00,
        0x01, // exports
        0x0a, 0x10, 0x02, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, 0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b,
    ];

    fn exports(wasm: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Ok(Payload::ExportSection(r)) = payload {
                names.extend(r.into_iter().filter_map(|e| e.ok()).map(|e| e.name.to_string()));
            }
        }
        names
    }

    fn operators(wasm: &[u8]) -> Vec<String> {
        let mut ops = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Ok(Payload::CodeSectionEntry(body)) = payload {
                let mut r = body.get_operators_reader().expect("body");
                while !r.eof() {
                    ops.push(format!("{:?}", r.read().expect("op")));
                }
            }
        }
        ops
    }

    #[test]
    fn adds_fuel_checks_a_checked_grow_and_the_exports() -> Result<()> {
        let out = meter(SPIN_AND_GROW)?.context("the module has code")?;
        assert_eq!(exports(&out), ["spin", "grow", FUEL_EXPORT, MAX_PAGES_EXPORT, DENIED_EXPORT]);
        let ops = operators(&out);
        // Function entry + loop start in $spin, entry in $grow.
        assert_eq!(ops.iter().filter(|o| o.starts_with("Unreachable")).count(), 3, "{ops:?}");
        // $grow's memory.grow now calls the added function (index 2), which holds the only grow.
        assert!(ops.iter().any(|o| o == "Call { function_index: 2 }"), "{ops:?}");
        assert_eq!(ops.iter().filter(|o| o.starts_with("MemoryGrow")).count(), 1, "{ops:?}");
        Ok(())
    }

    #[test]
    fn a_metered_module_or_one_without_code_is_left_alone() -> Result<()> {
        let out = meter(SPIN_AND_GROW)?.context("the module has code")?;
        assert!(meter(&out)?.is_none(), "metering twice would double the checks");
        let empty = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        assert!(meter(&empty)?.is_none());
        Ok(())
    }

    #[test]
    fn stale_debug_sections_are_dropped_and_other_custom_sections_kept() -> Result<()> {
        let mut wasm = SPIN_AND_GROW.to_vec();
        for (name, body) in [(".debug_line", &b"offsets"[..]), ("producers", &b"rustc"[..])] {
            let mut content = Vec::new();
            name_bytes(&mut content, name);
            content.extend_from_slice(body);
            wasm.push(0);
            leb_u32(&mut wasm, content.len() as u32);
            wasm.extend_from_slice(&content);
        }
        let out = meter(&wasm)?.context("metered")?;
        let customs: Vec<String> = Parser::new(0)
            .parse_all(&out)
            .filter_map(|p| match p {
                Ok(Payload::CustomSection(c)) => Some(c.name().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(customs, ["producers"]);
        Ok(())
    }

    fn name_bytes(out: &mut Vec<u8>, s: &str) {
        leb_u32(out, s.len() as u32);
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn an_export_named_like_the_added_ones_is_refused() {
        let mut wasm = SPIN_AND_GROW.to_vec();
        // The same module with its "grow" export renamed to one of the added names.
        let start = wasm.iter().position(|&b| b == 0x07).expect("export section");
        let mut exports = vec![0x02, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00];
        name_bytes(&mut exports, DENIED_EXPORT);
        exports.extend_from_slice(&[0x00, 0x01]);
        let old_len = wasm[start + 1] as usize;
        let mut section_bytes = vec![0x07];
        leb_u32(&mut section_bytes, exports.len() as u32);
        section_bytes.extend_from_slice(&exports);
        wasm.splice(start..start + 2 + old_len, section_bytes);
        let err = meter(&wasm).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("already exports"), "{err}");
    }

    #[test]
    fn a_component_is_refused_with_the_way_forward() {
        let component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        let err = meter(&component).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains("core modules") || err.contains("component"), "{err}");
    }

    #[test]
    fn signed_leb_round_trips_the_initial_values() {
        for v in [0i64, 1, 63, 64, -1, -64, -65, INITIAL_FUEL, INITIAL_MAX_PAGES, i64::MAX, i64::MIN] {
            let mut bytes = Vec::new();
            leb_i64(&mut bytes, v);
            let mut r = wasmparser::BinaryReader::new(&bytes, 0);
            assert_eq!(r.read_var_i64().expect("leb"), v);
        }
    }
}
