#[vigil::cached(cache_err = false)]
fn count(id: u64) -> u64 {
    id
}

#[vigil::cached(cache_none = true)]
fn parse(input: &str) -> Result<u64, std::num::ParseIntError> {
    input.parse()
}

fn main() {
    count(1);
    let _ = parse("1");
}
