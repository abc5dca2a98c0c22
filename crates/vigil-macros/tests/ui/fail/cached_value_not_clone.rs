struct Connection;

#[vigil::cached]
fn connect(port: u16) -> Connection {
    let _ = port;
    Connection
}

fn main() {
    connect(80);
}
