#![no_main]
//! The `resp_request` target of `lethe_fuzz`, under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lethe_fuzz::resp_request(data));
