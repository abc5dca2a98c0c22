/// A connection pool: not `Clone`, so not a key.
pub struct Db;

pub struct Session;

#[vigil::cached]
fn user_name(db: Db, id: u64) -> String {
    let _ = db;
    format!("user {id}")
}

#[vigil::cached]
fn session_count(session: &Session, id: u64) -> u64 {
    let _ = session;
    id
}

fn main() {
    user_name(Db, 1);
    session_count(&Session, 1);
}
