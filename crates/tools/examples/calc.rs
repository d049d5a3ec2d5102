//! `cargo run -p llmos-tools --example calc -- "2**200 / 7"`: try the calculator.
fn main() {
    for e in std::env::args().skip(1) {
        match llmos_tools::calc::calculate(&e, 50) {
            Ok(a) => println!("{e}\n  {}", a.text()),
            Err(err) => println!("{e}\n  error: {err}"),
        }
    }
}
