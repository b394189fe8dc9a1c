//! `wasm-meter` on a file, and the metered module run by V8 (Node): a loop stops when its fuel
//! runs out, memory stops growing at the cap and says so, and calls within both bounds behave
//! as before.

use std::process::Command;

/// `(memory 1) (func $spin (param i32) (loop (br_if 0 (local.tee 0 (i32.sub (local.get 0)
/// (i32.const 1)))))) (func $grow (param i32) (result i32) (memory.grow (local.get 0)))`: spin
/// counts its argument down to zero.
const SPIN_AND_GROW: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
    0x01, 0x0a, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f, // types
    0x03, 0x03, 0x02, 0x00, 0x01, // functions
    0x05, 0x03, 0x01, 0x00, 0x01, // memory
    0x07, 0x0f, 0x02, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, 0x04, b'g', b'r', b'o', b'w', 0x00,
    0x01, // exports
    0x0a, 0x17, 0x02, // code: two bodies
    0x0e, 0x00, 0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b, 0x0b, // spin
    0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, // grow
];

const CHECK: &str = r#"
const bytes = require('node:fs').readFileSync(process.argv[1])
const { exports: x } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {})
const fresh = () => { x.livestore_fuel.value = 1000n; x.livestore_memory_denied.value = 0 }
const out = {}
fresh(); x.spin(100); out.spinWithinBudget = String(1000n - x.livestore_fuel.value)
fresh(); try { x.spin(5000); out.spinPastBudget = 'returned' } catch (e) { out.spinPastBudget = e.message }
out.fuelAfter = String(x.livestore_fuel.value)
fresh(); x.livestore_memory_max_pages.value = 4n
out.growWithin = x.grow(3); out.deniedWithin = x.livestore_memory_denied.value
out.growPast = x.grow(1); out.deniedPast = x.livestore_memory_denied.value
out.pages = x.grow(0)
console.log(JSON.stringify(out))
"#;

#[test]
fn the_metered_module_stops_at_its_fuel_and_memory_cap_in_v8() {
    let dir = std::env::temp_dir().join(format!("wasm-meter-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("spin.wasm");
    std::fs::write(&file, SPIN_AND_GROW).expect("write");
    let meter = env!("CARGO_BIN_EXE_wasm-meter");
    let out = Command::new(meter).arg(&file).output().expect("run wasm-meter");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("metered"), "{out:?}");
    let again = Command::new(meter).arg(&file).output().expect("run wasm-meter");
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged"), "{again:?}");

    let node =
        Command::new("node").args(["-e", CHECK]).arg(&file).output().expect("node (the test command installs it)");
    assert!(node.status.success(), "{}", String::from_utf8_lossy(&node.stderr));
    let text = String::from_utf8_lossy(&node.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    // 100 iterations + the function entry.
    assert!(text.contains(r#""spinWithinBudget":"101""#), "{text}");
    assert!(text.contains(r#""spinPastBudget":"unreachable"#), "a loop past its fuel traps: {text}");
    assert!(text.contains(r#""fuelAfter":"-1""#), "{text}");
    // 1 page + 3 = the cap of 4: allowed (returns the old size); one more is refused and flagged.
    assert!(text.contains(r#""growWithin":1,"deniedWithin":0"#), "{text}");
    assert!(text.contains(r#""growPast":-1,"deniedPast":1"#), "{text}");
    assert!(text.contains(r#""pages":4"#), "{text}");
}

#[test]
fn usage_errors_name_the_expected_input() {
    let out = Command::new(env!("CARGO_BIN_EXE_wasm-meter")).output().expect("run wasm-meter");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: wasm-meter FILE.wasm"), "{out:?}");
}
