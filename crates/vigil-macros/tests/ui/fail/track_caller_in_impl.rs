struct Checks;

#[vigil::timed]
impl Checks {
    fn fine(&self) {}

    #[track_caller]
    fn check(&self, ok: bool) {
        assert!(ok);
    }
}

fn main() {
    Checks.fine();
    Checks.check(true);
}
