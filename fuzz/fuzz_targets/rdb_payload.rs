#![no_main]
//! The `rdb_payload` target of `lethe_fuzz`, under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lethe_fuzz::rdb_payload(data));
