//! `#[timed]` adds no lint of its own and hides none of the user's: code
//! after a panic in the body is still reported.

#![deny(unreachable_code)]

#[vigil::timed]
fn stub() -> u32 {
    panic!("stub");
    7
}

#[vigil::timed]
async fn async_stub() {
    panic!("stub");
    println!("never");
}

fn main() {
    stub();
    drop(async_stub());
}
