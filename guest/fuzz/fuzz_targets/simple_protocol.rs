//! The simple JSON protocol (auth, push with ids, pull since seqNum/timestamp, ack) mixed
//! with LiveStore frames on the same store, with the same invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::drive(data, 3));
