#[vigil::cached(ttl = "five minutes")]
fn user(id: u64) -> String {
    format!("user {id}")
}

#[vigil::cached(ttl = "0s")]
fn never_kept(id: u64) -> String {
    format!("user {id}")
}

fn main() {
    user(1);
    never_kept(1);
}
