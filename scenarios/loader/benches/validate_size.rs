//! Validation time against file size: doubling the number of `[[assert]]` blocks should double
//! the time (it used to quadruple it: 1 MB of them took 8.5 s, 4 MB over two minutes). Run with
//! `RUSTFLAGS="--cfg madsim" cargo bench -p scenarios --bench validate_size`; it prints, it
//! does not assert.

use std::time::Instant;

#[path = "../tests/support/chained_asserts.rs"]
mod chained_asserts;
use chained_asserts::with_asserts;

fn main() {
    let mut previous: Option<f64> = None;
    for n in [2_500, 5_000, 10_000, 20_000, 40_000] {
        let text = with_asserts(n);
        let started = Instant::now();
        scenarios::parse_str("bench.toml", &text).expect("the bench file validates");
        let seconds = started.elapsed().as_secs_f64();
        let ratio = previous.map_or(String::new(), |p| format!("  x{:.2} for twice the asserts", seconds / p));
        println!("{n:>6} asserts, {:>5} KB: {:.3} s{ratio}", text.len() / 1000, seconds);
        previous = Some(seconds);
    }
}
