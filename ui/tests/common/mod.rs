//! What the end-to-end tests of `pgsim` share: running the binary, a scratch folder per test,
//! and an output's text for assertion messages. Each test crate uses its own subset.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `pgsim` binary built for these tests.
pub fn pgsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgsim")).args(args).env_remove("RUST_BACKTRACE").output().expect("runs pgsim")
}

/// A fresh, empty folder `pgsim-<suite>-<pid>-<name>` in the temporary directory.
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pgsim-{suite}-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
