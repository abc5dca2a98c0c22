#[derive(Clone, PartialEq)]
struct Point {
    x: f64,
    y: f64,
}

#[vigil::cached]
fn distance(from: Point) -> f64 {
    (from.x * from.x + from.y * from.y).sqrt()
}

fn main() {
    distance(Point { x: 3.0, y: 4.0 });
}
