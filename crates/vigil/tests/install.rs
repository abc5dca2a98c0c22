//! `install()` makes vigil the process's recorder for good, so what it
//! started keeps running without the handle: `install()?;` written as a
//! statement still serves `/metrics`. (Its own test binary: the global
//! recorder can be installed once per process.)

#![cfg(feature = "listener")]

mod servers;

use std::time::Duration;

use vigil::Monitor;

#[test]
fn an_installed_monitor_serves_after_its_handle_is_dropped() {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .upkeep_interval(Duration::from_millis(50))
        .install()
        .expect("the first install in this process");
    let address = monitor.listen_address().expect("a listener");
    drop(monitor);

    // Recorded after the handle is gone, through the global recorder.
    vigil::metrics::counter!("jobs_done_total").increment(3);
    // The upkeep thread keeps running too; let it tick a few times.
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = servers::http_get(address, "/metrics")
        .unwrap_or_else(|e| panic!("scraping {address} after dropping the handle: {e}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("jobs_done_total 3"), "{body}");

    // A second install fails, and leaves the first one serving.
    let err = Monitor::builder().install().unwrap_err();
    assert!(matches!(err, vigil::Error::AlreadyInstalled), "{err}");
    let (status, _) = servers::http_get(address, "/metrics").expect("still served");
    assert_eq!(status, 200);
}
