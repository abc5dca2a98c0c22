struct Limits;

#[vigil::timed]
impl Limits {
    // Implicitly skipped: fine.
    const fn max() -> u32 {
        10
    }

    #[vigil::timed(slow = "1s")]
    const fn min() -> u32 {
        1
    }
}

fn main() {
    let _ = Limits::max() + Limits::min();
}
