#[vigil::timed(concurrency = true)]
fn handler() {}

fn main() {
    handler();
}
