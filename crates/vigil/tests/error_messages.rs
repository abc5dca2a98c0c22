//! `vigil::Error` prints the same one-line message with `{:?}` as with
//! `{}`, so `fn main() -> Result<(), vigil::Error>` (which Rust prints as
//! `Error: {err:?}`) and `.unwrap()` show the message, not a struct dump.

use std::time::Duration;

use vigil::{Error, Monitor};

/// `Debug` is `Display`, on one line; returns the message.
fn same_message(err: &Error) -> String {
    let display = err.to_string();
    assert_eq!(format!("{err:?}"), display);
    assert_eq!(format!("{err:#?}"), display);
    assert!(!display.contains('\n'), "one line: {display}");
    display
}

#[test]
fn builder_errors_debug_as_their_message() {
    let setting = Monitor::builder()
        .window(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(setting, Error::Setting { .. }), "{setting}");
    assert_eq!(
        same_message(&setting),
        "invalid setting `window`: must be longer than zero"
    );

    let address = Monitor::builder()
        .listen("not an address")
        .build()
        .unwrap_err();
    assert!(matches!(address, Error::Address { .. }), "{address}");
    assert!(
        same_message(&address).starts_with("invalid address `not an address` for `listen`: "),
        "{address}"
    );

    let quantiles = Monitor::builder()
        .quantiles(&[0.5, 1.5])
        .build()
        .unwrap_err();
    assert_eq!(
        same_message(&quantiles),
        "invalid setting `quantiles`: 1.5 is not in 0.0..=1.0"
    );

    // What `fn main() -> Result<(), vigil::Error>` prints on failure.
    assert_eq!(
        format!("Error: {setting:?}"),
        "Error: invalid setting `window`: must be longer than zero"
    );
}

#[test]
fn a_listener_error_keeps_the_os_reason_on_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = taken.local_addr().unwrap();
    let err = Monitor::builder()
        .listen(address.to_string())
        .build()
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::Listen { .. }), "{err}");
    let message = same_message(&err);
    assert!(
        message.starts_with(&format!("cannot serve /metrics on {address}: ")),
        "{message}"
    );
}
