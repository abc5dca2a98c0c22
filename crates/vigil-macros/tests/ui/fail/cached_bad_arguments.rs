#[vigil::cached(ttl = "1m", max_capacity = 0)]
fn user(id: u64) -> String {
    format!("user {id}")
}

#[vigil::cached(name = "users", name = "people")]
fn person(id: u64) -> String {
    format!("person {id}")
}

fn main() {
    user(1);
    person(1);
}
