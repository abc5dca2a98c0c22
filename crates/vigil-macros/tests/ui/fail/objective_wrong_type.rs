const API_SLO: &str = "api";

#[vigil::timed(objective = API_SLO)]
fn handler() {}

fn main() {
    handler();
}
