#[vigil::timed(labels(result = "always"))]
fn handler() {}

fn main() {
    handler();
}
