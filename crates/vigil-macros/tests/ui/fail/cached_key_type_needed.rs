struct Repo {
    id: u64,
}

impl Repo {
    #[vigil::cached(key = (self.id, page))]
    fn page(&self, page: u32) -> String {
        format!("{}:{page}", self.id)
    }

    #[vigil::cached(key = pages)]
    fn count(&self, page: u32) -> u32 {
        page
    }
}

fn main() {
    Repo { id: 1 }.page(1);
    Repo { id: 1 }.count(1);
}
