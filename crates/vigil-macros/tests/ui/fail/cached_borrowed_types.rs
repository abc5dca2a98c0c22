#[vigil::cached]
fn first_word(text: &str) -> &str {
    text.split(' ').next().unwrap_or("")
}

#[vigil::cached]
fn total(items: &mut Vec<u32>) -> u32 {
    items.drain(..).sum()
}

#[vigil::cached]
fn size(text: std::borrow::Cow<'_, str>) -> usize {
    text.len()
}

fn main() {
    first_word("a b");
    total(&mut vec![1]);
    size("a".into());
}
