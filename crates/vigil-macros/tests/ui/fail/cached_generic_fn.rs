#[vigil::cached]
fn describe<T: std::fmt::Debug + std::hash::Hash + Eq + Clone>(value: T) -> String {
    format!("{value:?}")
}

#[vigil::cached]
fn render(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {
    describe(1);
    render(1);
}
