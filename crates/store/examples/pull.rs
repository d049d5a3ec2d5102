//! Pull models by hand: `cargo run -p llmos-store --example pull -- NAME|PATH|URL...`
//! (uses $LLMOS_HOME or ~/.cache/llmos). Handy for timing pulls and trying Ctrl-C.

use std::time::Instant;

use llmos_store::{Progress, Store};

fn main() {
    let store = match Store::open(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    };
    for spec in std::env::args().skip(1) {
        let start = Instant::now();
        match store.pull(&spec, Progress::Bar) {
            Ok(path) => println!(
                "{spec}: {} ({:.1}s)",
                path.display(),
                start.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
    }
}
