fn yes(_: &u32) -> bool {
    true
}

#[vigil::timed(ok_if = yes, error_if = yes)]
fn handler() -> u32 {
    1
}

fn main() {
    handler();
}
