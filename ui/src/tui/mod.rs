//! `pgsim ui`: step forwards and backwards through a run.
//!
//! gitui's shape: every input becomes an `app::Input`; `run_loop` is generic over the ratatui
//! backend so tests drive the real loop on a `TestBackend`; `view` only reads the app and
//! `App::handle` only changes it.

pub mod app;
pub mod filter;
pub mod list;
pub mod load;
pub mod panes;
pub mod pg;
pub mod state;
pub mod term;
pub mod timefmt;
pub mod traffic;
pub mod view;

use std::io;

use ratatui::Terminal;
use ratatui::backend::Backend;

pub use app::{App, Input};

/// Draw, wait for an input, handle it; until the app asks to quit or the inputs run out.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut next_input: impl FnMut(&App) -> io::Result<Option<Input>>,
) -> io::Result<()> {
    loop {
        terminal.draw(|f| view::draw(f, app))?;
        if app.quit {
            return Ok(());
        }
        let Some(input) = next_input(app)? else { return Ok(()) };
        if input == Input::Resize {
            terminal.autoresize()?;
        }
        app.handle(input);
    }
}
