struct Repo;

#[vigil::timed(name = "repo", concurrency)]
impl Repo {
    fn get(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Repo.get();
}
