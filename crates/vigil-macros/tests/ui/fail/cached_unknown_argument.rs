#[vigil::cached(tll = "5m")]
fn user(id: u64) -> String {
    format!("user {id}")
}

fn main() {
    user(1);
}
