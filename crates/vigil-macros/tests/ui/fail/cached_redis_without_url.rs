#[vigil::cached(redis)]
fn row(id: u64) -> String {
    id.to_string()
}

#[vigil::cached(redis = |id| id)]
fn other(id: u64) -> String {
    id.to_string()
}

fn main() {}
