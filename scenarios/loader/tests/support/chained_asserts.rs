//! A scenario with many `[[assert]]` blocks, shared by `tests/good.rs` (they load, each with
//! its line) and `benches/validate_size.rs` (validation time grows linearly with them).

const BASE: &str = include_str!("../../../../fuzz/seeds/base.toml");

/// `n` chained assertions (each `if` the one above) after the base scenario.
pub fn with_asserts(n: usize) -> String {
    let mut text = BASE.to_string();
    for i in 0..n {
        let given = if i > 0 { format!("if = \"a{}\"\n", i - 1) } else { String::new() };
        text.push_str(&format!("\n[[assert]]\nname = \"a{i}\"\nid = \"a{i}\"\n{given}metric = \"x.y\"\nmax = 1\n"));
    }
    text
}
