#[vigil::timed(nmae = "typo")]
fn handler() {}

fn main() {
    handler();
}
