#[vigil::cached]
const fn answer() -> u32 {
    42
}

#[vigil::cached]
struct Config {
    port: u16,
}

struct Repo;

#[vigil::cached]
impl Repo {
    fn get(&self) -> u32 {
        1
    }
}

#[vigil::cached]
fn forever() -> ! {
    loop {}
}

fn main() {
    let _ = answer();
    let _ = Repo.get();
}
