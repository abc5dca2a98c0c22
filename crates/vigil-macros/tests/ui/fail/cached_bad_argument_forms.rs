#[vigil::cached(ttl = 30)]
fn ttl_number(id: u64) -> u64 {
    id
}

#[vigil::cached(ttl = 5m)]
fn ttl_suffixed(id: u64) -> u64 {
    id
}

#[vigil::cached(max_capacity = "1000")]
fn quoted_capacity(id: u64) -> u64 {
    id
}

#[vigil::cached(max_capacity = -1)]
fn negative_capacity(id: u64) -> u64 {
    id
}

#[vigil::cached(cache_err = "yes")]
fn quoted_flag(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[vigil::cached(name = users)]
fn unquoted_name(id: u64) -> u64 {
    id
}

#[vigil::cached(key)]
fn key_without_value(id: u64) -> u64 {
    id
}

#[vigil::cached(tags = "users")]
fn one_tag(id: u64) -> u64 {
    id
}

fn main() {}
