//! Names, label keys and label values recorded through vigil's recorder,
//! rendered as text and protobuf, both checked.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = vigil_fuzz::exposition::check(data) {
        panic!("{failure}");
    }
});
