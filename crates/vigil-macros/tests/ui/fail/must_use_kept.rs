#![deny(unused_must_use)]

#[vigil::timed]
#[must_use = "the sum is the point"]
fn sum(a: u32, b: u32) -> u32 {
    a + b
}

fn main() {
    sum(1, 2);
}
