#[vigil::timed(slow = 250)]
fn slow_number() {}

#[vigil::timed(slow = SLOW)]
fn slow_constant() {}

#[vigil::timed(name = handler)]
fn unquoted_name() {}

#[vigil::timed(labels(store = postgres))]
fn unquoted_label() {}

#[vigil::timed(ok_if = |v: &Option<u32>| v.is_some())]
fn closure_classifier() -> Option<u32> {
    None
}

#[vigil::timed(crate = "vigil_timing")]
fn quoted_crate() {}

#[vigil::timed(objective = "api")]
fn objective_string() {}

#[vigil::timed(objective)]
fn objective_without_value() {}

fn main() {}
