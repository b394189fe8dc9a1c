//! LiveStore frames (push, pull, ack, interrupt, …) against one store: no panic, no invalid
//! JSON out, and the log stays a gap-free, increasing chain whose last seqNum is the head.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::drive(data, 1));
