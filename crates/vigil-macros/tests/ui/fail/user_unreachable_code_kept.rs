//! `#[timed]` adds no lint of its own and hides none of the user's: code
//! after a `todo!()` in the body is still reported.

#![deny(unreachable_code)]

#[vigil::timed]
fn stub() -> u32 {
    todo!();
    7
}

#[vigil::timed]
async fn async_stub() {
    todo!();
    println!("never");
}

fn main() {
    stub();
    drop(async_stub());
}
