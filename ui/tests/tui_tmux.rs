//! The real binary in a real terminal: `pgsim ui` inside a detached tmux session, driven with
//! send-keys and read with capture-pane. Skips (with a message) where tmux is not installed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server (its own socket), killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, width: u16, height: u16, shell_command: &str) -> Tmux {
        let tmux = Tmux { socket: format!("pgsim-test-{}-{name}", std::process::id()) };
        let (w, h) = (width.to_string(), height.to_string());
        let o = tmux.run(&["new-session", "-d", "-s", "t", "-x", &w, "-y", &h, shell_command]);
        assert!(o.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&o.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("runs tmux")
    }

    fn keys(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-t", "t", "-l", keys]).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn alternate_screen_on(&self) -> bool {
        String::from_utf8_lossy(&self.run(&["display-message", "-p", "-t", "t", "#{alternate_on}"]).stdout).trim()
            == "1"
    }

    /// Polls the screen until `pred` holds; panics with the last screen after `timeout`.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !found {
        // Straight to the stream: libtest captures print! and eprint!, and a skip must show.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: tmux is not installed (apt-get install -y tmux); the terminal test did not run"
        );
    }
    found
}

/// Runs `pgsim ARGS` from the repository root, then prints its exit code and whether the
/// terminal is back in cooked mode (`icanon`, `echo`), and stays open to be read.
fn shell(args: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    format!(
        "cd '{}' && RUST_BACKTRACE=0 '{}' {args}; echo \"pgsim exited $?\"; \
         echo \"tty: $(stty -a | tr -s ' ;' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' ')\"; \
         sleep 60",
        root.display(),
        env!("CARGO_BIN_EXE_pgsim")
    )
}

#[test]
fn steps_shows_help_and_quits_restoring_the_terminal() {
    if !tmux_available() {
        return;
    }
    let tmux = Tmux::start("keys", 100, 30, &shell("ui scenarios/network-smoke.toml"));
    let first = tmux.wait_for("the first frame", |s| s.contains("topology") && s.contains("event 0/"));
    assert!(tmux.alternate_screen_on(), "the UI draws on the alternate screen");
    assert!(first.contains("network-smoke seed 1") && first.contains("no active faults"), "{first}");

    // run_started -> the degraded switch (10 s) -> the flapping link (20 s) -> its first flap.
    tmux.keys("]]]");
    // Wait for the cursor (▶) itself: the row is visible in the list one key press earlier.
    let s = tmux.wait_for("the third significant event", |s| s.contains("▶00:20.000        flapped #2 down"));
    assert!(s.contains("00:20.000 /") && s.contains("pdx-core DEGRADED") && s.contains("[down now]"), "{s}");
    tmux.keys("[");
    tmux.wait_for("one significant event back", |s| s.contains("▶00:20.000        fault_started #2"));

    tmux.keys("?");
    let s = tmux.wait_for("the help overlay", |s| s.contains(" keys ") && s.contains("go to a time"));
    assert!(s.contains("q / Ctrl-C"), "{s}");

    tmux.keys("q");
    let s = tmux.wait_for("pgsim to exit", |s| s.contains("tty: "));
    assert!(s.contains("pgsim exited 0"), "{s}");
    assert!(s.contains("tty: icanon echo"), "raw mode left: {s}");
    assert!(!s.contains("topology"), "the UI's screen is gone: {s}");
    assert!(!tmux.alternate_screen_on(), "back on the normal screen");
}

#[test]
fn a_panic_restores_the_terminal() {
    if !tmux_available() {
        return;
    }
    let tmux = Tmux::start("panic", 80, 24, &shell("ui scenarios/network-smoke.toml --debug-panic"));
    let s = tmux.wait_for("pgsim to exit", |s| s.contains("tty: "));
    assert!(s.contains("pgsim exited 101"), "a panic's exit code: {s}");
    assert!(s.contains("debug panic requested"), "the panic message is readable: {s}");
    assert!(s.contains("tty: icanon echo"), "raw mode left: {s}");
    assert!(!tmux.alternate_screen_on(), "back on the normal screen");
}
