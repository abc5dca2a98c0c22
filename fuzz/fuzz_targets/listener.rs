//! Bytes sent to a running `/metrics` listener on loopback; it must
//! answer or close, then still serve `GET /metrics`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil::Monitor;
use vigil_fuzz::listener;

static MONITOR: OnceLock<Monitor> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let monitor = MONITOR.get_or_init(listener::monitor);
    let address = monitor.listen_address().expect("a listener");
    if let Err(failure) = listener::exchange(address, data) {
        panic!("{failure}");
    }
    if let Err(failure) = listener::check_serving(address) {
        panic!("after {data:?}: {failure}");
    }
});
