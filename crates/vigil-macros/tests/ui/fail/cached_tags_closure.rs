#[vigil::cached(tags = |id| [format!("user:{id}")])]
fn user(id: u64) -> String {
    format!("user {id}")
}

fn main() {
    user(1);
}
