#[vigil::timed(slow = "quickly")]
fn handler() {}

fn main() {
    handler();
}
