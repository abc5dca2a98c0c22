//! HdrHistogram base64 text, or serialized bytes, through
//! `Snapshot::from_base64`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = vigil_fuzz::histogram::check(data) {
        panic!("{failure}");
    }
});
