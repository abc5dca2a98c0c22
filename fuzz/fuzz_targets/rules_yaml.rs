//! A rule file in YAML through vigil-alert's loader.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_alert::config::Format;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = vigil_fuzz::rules::check(data, Format::Yaml) {
        panic!("{failure}");
    }
});
