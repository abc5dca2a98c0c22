#[vigil::timed]
#[track_caller]
fn check(ok: bool) {
    assert!(ok);
}

#[vigil::timed]
#[cfg_attr(all(), track_caller)]
async fn check_later(ok: bool) {
    assert!(ok);
}

fn main() {
    check(true);
    drop(check_later(true));
}
