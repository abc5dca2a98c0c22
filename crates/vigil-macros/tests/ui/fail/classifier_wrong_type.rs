fn is_ok(_: &String) -> bool {
    true
}

#[vigil::timed(ok_if = is_ok)]
fn handler() -> u32 {
    1
}

fn main() {
    handler();
}
