//! The real terminal: raw mode and the alternate screen, always left again (on return, on
//! error and on panic), and crossterm's events turned into `Input`s.

use std::io::{self, Stdout};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::cli::{EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_PASS};
use crate::tui::app::{App, Input};
use crate::tui::load::Run;

/// How often playback advances (and the screen redraws) while playing.
const TICK_PLAYING: Duration = Duration::from_millis(50);
const TICK_IDLE: Duration = Duration::from_millis(500);

/// `pgsim ui`: load or run, then show. Exit codes as for `pgsim run` (2 bad input, 3 internal).
pub fn command(file: Option<&Path>, trace: Option<&Path>, seed: Option<u64>, debug_panic: bool) -> i32 {
    let run = match (file, trace) {
        (_, Some(dir)) => match Run::from_dir(dir) {
            Ok(run) => run,
            Err(e) => {
                eprintln!("pgsim ui: {e}");
                return EXIT_BAD_INPUT;
            }
        },
        (Some(file), None) => {
            let sc = match scenarios::load(file) {
                Ok(sc) => sc,
                Err(d) => {
                    eprintln!("{d}");
                    return EXIT_BAD_INPUT;
                }
            };
            eprintln!("pgsim ui: running {} ...", sc.name);
            match std::panic::catch_unwind(|| Run::simulate(&sc, seed)) {
                Ok(run) => run,
                Err(_) => {
                    eprintln!("replay with: pgsim run {} --seed {}", file.display(), seed.unwrap_or(sc.seed));
                    return EXIT_INTERNAL;
                }
            }
        }
        (None, None) => {
            eprintln!("pgsim ui: give a scenario FILE or --trace DIR");
            return EXIT_BAD_INPUT;
        }
    };
    match show(App::new(run), debug_panic) {
        Ok(()) => EXIT_PASS,
        Err(e) => {
            eprintln!("pgsim ui: terminal: {e}");
            EXIT_INTERNAL
        }
    }
}

/// Whether raw mode and the alternate screen are on. Leaving the alternate screen twice is not
/// harmless: the second `CSI ? 1049 l` restores the cursor saved on entry, and what is printed
/// next (the panic message, the shell prompt) overwrites the screen.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen, once (the panic hook and `Restore` both call it).
fn restore() -> io::Result<()> {
    if !ENTERED.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    disable_raw_mode()?;
    execute!(io::stdout(), LeaveAlternateScreen, cursor::Show)
}

/// Restores the terminal when dropped, so early returns and errors leave it usable.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = restore();
    }
}

fn enter() -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
    // A panic anywhere below must not leave the user's shell in raw mode on the alternate
    // screen: restore first, then let the usual hook print the message.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = restore();
        previous(info);
    }));
    ENTERED.store(true, Ordering::SeqCst);
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

fn show(mut app: App, debug_panic: bool) -> io::Result<()> {
    let mut terminal = enter()?;
    let _restore = Restore;
    let mut last_tick = Instant::now();
    let mut drawn = false;
    super::run_loop(&mut terminal, &mut app, |app| {
        if debug_panic && drawn {
            panic!("debug panic requested (pgsim ui --debug-panic)");
        }
        drawn = true;
        next_input(app, &mut last_tick)
    })
}

/// The next key or resize, or a tick when the tick period has passed.
fn next_input(app: &App, last_tick: &mut Instant) -> io::Result<Option<Input>> {
    let period = if app.playing { TICK_PLAYING } else { TICK_IDLE };
    loop {
        let elapsed = last_tick.elapsed();
        if elapsed >= period {
            *last_tick = Instant::now();
            // Capped, so that starting playback after an idle spell does not leap ahead.
            let elapsed_ms = elapsed.min(2 * TICK_PLAYING).as_millis() as u64;
            return Ok(Some(Input::Tick { elapsed_ms }));
        }
        if event::poll(period - elapsed)? {
            match event::read()? {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => return Ok(Some(Input::Key(k))),
                TermEvent::Resize(..) => return Ok(Some(Input::Resize)),
                _ => {}
            }
        }
    }
}
