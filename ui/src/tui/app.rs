//! Input handling: every input becomes an `Input`, and `App::handle` is the only place that
//! changes what the screen shows.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::filter::{self, Filter};
use crate::tui::load::{Run, Topology};
use crate::tui::state::{Folded, Timeline};
use crate::tui::timefmt;
use crate::tui::traffic::Traffic;

/// Everything the main loop feeds the app: keys, resizes and the passing of wall time (only
/// the real terminal reads a clock; tests pass explicit ticks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Key(KeyEvent),
    Resize,
    Tick { elapsed_ms: u64 },
}

impl Input {
    pub fn key(code: KeyCode) -> Input {
        Input::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }
    pub fn char(c: char) -> Input {
        Input::key(KeyCode::Char(c))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    GoTo,
    Search,
    Filter,
}

impl Purpose {
    pub fn label(self) -> &'static str {
        match self {
            Purpose::GoTo => "go to (14:49, 1:02:03, +6m, -30s)",
            Purpose::Search => "search",
            Purpose::Filter => "filter (kinds or nodes; empty: all)",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    Prompt { purpose: Purpose, text: String },
}

/// Playback speeds, in simulated seconds per wall second.
pub const SPEEDS: [f64; 11] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];
const SPEED_DEFAULT_INDEX: usize = 3;
/// PageUp / PageDown move this many listed events.
const PAGE_EVENTS: usize = 20;

pub struct App {
    pub scenario: String,
    pub seed: u64,
    pub names: Vec<String>,
    pub kinds: Vec<&'static str>,
    pub topology: Topology,
    pub timeline: Timeline,
    pub traffic: Traffic,
    /// Index of the selected event; the panes show the fold of events `0..=cursor`.
    pub cursor: usize,
    pub state: Folded,
    pub filter: Filter,
    /// Indices of the events the filter keeps (`None`: all, so no million-entry copy).
    visible: Option<Vec<usize>>,
    pub search: String,
    pub mode: Mode,
    pub playing: bool,
    pub speed_index: usize,
    /// Simulated time of playback; ahead of the cursor's event between events.
    play_t_ns: u64,
    /// One line of feedback in the footer ("no match", "end of trace", ...).
    pub status: String,
    pub quit: bool,
}

impl App {
    pub fn new(run: Run) -> App {
        let start = Folded::with_pg(&run.kinds, &run.names, &run.pg);
        let timeline = Timeline::from_start(run.events, start);
        let traffic = Traffic::from_events(&timeline.events);
        let state = timeline.state_at(0);
        App {
            scenario: run.scenario,
            seed: run.seed,
            names: run.names,
            kinds: run.kinds,
            topology: run.topology,
            timeline,
            traffic,
            cursor: 0,
            state,
            filter: Filter::default(),
            visible: None,
            search: String::new(),
            mode: Mode::Normal,
            playing: false,
            speed_index: SPEED_DEFAULT_INDEX,
            play_t_ns: 0,
            status: String::new(),
            quit: false,
        }
    }

    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed_index]
    }

    // ----- the listed (filtered) events -----

    pub fn listed_len(&self) -> usize {
        self.visible.as_ref().map_or(self.timeline.len(), Vec::len)
    }

    pub fn listed(&self, pos: usize) -> usize {
        self.visible.as_ref().map_or(pos, |v| v[pos])
    }

    /// How many listed events come before `index` (so `listed(pos)` is the first at or after).
    pub fn listed_before(&self, index: usize) -> usize {
        self.visible.as_ref().map_or(index.min(self.timeline.len()), |v| v.partition_point(|&i| i < index))
    }

    /// The last listed event at or before `index`, else the first listed one.
    fn snap(&self, index: usize) -> Option<usize> {
        let n = self.listed_len();
        if n == 0 {
            return None;
        }
        let after = self.listed_before(index + 1);
        Some(self.listed(after.saturating_sub(1).min(n - 1)))
    }

    // ----- moving the cursor -----

    /// Moves the cursor; the fold follows (replay forwards, or snapshot and replay).
    pub fn seek(&mut self, index: usize) {
        let index = index.min(self.timeline.len().saturating_sub(1));
        self.timeline.advance(&mut self.state, index);
        self.cursor = index;
        self.play_t_ns = self.timeline.events[index].t_ns;
    }

    fn step(&mut self, forward: bool, count: usize) {
        let n = self.listed_len();
        if n == 0 {
            self.status = "no events match the filter".into();
            return;
        }
        let pos = if forward {
            (self.listed_before(self.cursor + 1) + count - 1).min(n - 1)
        } else {
            self.listed_before(self.cursor).saturating_sub(count)
        };
        self.seek(self.listed(pos));
    }

    fn jump_stop(&mut self, forward: bool) {
        let stops = &self.timeline.stops;
        let keep = |i: &&usize| self.filter.matches(&self.timeline.events[**i]);
        let found = if forward {
            stops[stops.partition_point(|&i| i <= self.cursor)..].iter().find(keep)
        } else {
            stops[..stops.partition_point(|&i| i < self.cursor)].iter().rev().find(keep)
        };
        match found {
            Some(&i) => self.seek(i),
            None => self.status = format!("no {} significant event", if forward { "later" } else { "earlier" }),
        }
    }

    fn go_to_time(&mut self, t_ns: u64) {
        match self.snap(self.timeline.index_at_time(t_ns)) {
            Some(i) => {
                self.seek(i);
                // Playback resumes from the time asked for, not from the event before it.
                self.play_t_ns = t_ns.min(self.timeline.end_ns());
            }
            None => self.status = "no events match the filter".into(),
        }
    }

    /// Next (or previous) listed event after the cursor whose line contains the search text,
    /// ignoring case; wraps around once.
    fn search_next(&mut self, forward: bool) {
        if self.search.is_empty() {
            self.status = "no search yet: press /".into();
            return;
        }
        let needle = self.search.to_lowercase();
        let n = self.listed_len();
        let start = self.listed_before(self.cursor);
        let hit = (1..=n).map(|k| if forward { (start + k) % n } else { (start + n - k) % n }).find(|&pos| {
            let i = self.listed(pos);
            filter::line(&self.timeline.events[i], &self.names).to_lowercase().contains(&needle)
        });
        match hit {
            Some(pos) => {
                let i = self.listed(pos);
                let wrapped = if forward { i <= self.cursor } else { i >= self.cursor };
                self.status =
                    if wrapped { format!("search wrapped: {}", self.search) } else { format!("/{}", self.search) };
                self.seek(i);
            }
            None => self.status = format!("no match for {:?}", self.search),
        }
    }

    fn set_filter(&mut self, text: &str) {
        self.filter = Filter::parse(text, &self.names);
        self.visible = (!self.filter.is_empty())
            .then(|| (0..self.timeline.len()).filter(|&i| self.filter.matches(&self.timeline.events[i])).collect());
        match self.snap(self.cursor) {
            Some(i) => {
                self.status = format!("{} of {} events listed", self.listed_len(), self.timeline.len());
                self.seek(i);
            }
            None => self.status = format!("no events match {:?}", self.filter.text),
        }
    }

    fn tick(&mut self, elapsed_ms: u64) {
        if !self.playing {
            return;
        }
        let advance_ns = (elapsed_ms as f64 * 1e6 * self.speed()) as u64;
        let t = self.play_t_ns.saturating_add(advance_ns);
        if let Some(i) = self.snap(self.timeline.index_at_time(t))
            && i > self.cursor
        {
            self.seek(i);
        }
        self.play_t_ns = t;
        if t >= self.timeline.end_ns() {
            self.playing = false;
            self.status = "end of trace".into();
        }
    }

    // ----- input -----

    pub fn handle(&mut self, input: Input) {
        let key = match input {
            Input::Key(k) => k,
            Input::Tick { elapsed_ms } => return self.tick(elapsed_ms),
            Input::Resize => return,
        };
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key.code),
            Mode::Help => {
                if key.code == KeyCode::Char('q') {
                    self.quit = true;
                }
            }
            Mode::Prompt { purpose, text } => self.prompt_key(purpose, text, key.code),
        }
    }

    fn prompt_key(&mut self, purpose: Purpose, mut text: String, code: KeyCode) {
        match code {
            KeyCode::Enter => self.submit(purpose, &text),
            KeyCode::Esc => {}
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Prompt { purpose, text };
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.mode = Mode::Prompt { purpose, text };
            }
            _ => self.mode = Mode::Prompt { purpose, text },
        }
    }

    fn submit(&mut self, purpose: Purpose, text: &str) {
        match purpose {
            Purpose::GoTo => match timefmt::parse_target(text, self.play_t_ns) {
                Ok(t) => self.go_to_time(t),
                Err(e) => self.status = e,
            },
            Purpose::Search => {
                if !text.is_empty() {
                    self.search = text.to_string();
                }
                self.search_next(true);
            }
            Purpose::Filter => self.set_filter(text),
        }
    }

    fn normal_key(&mut self, code: KeyCode) {
        self.status.clear();
        let prompt = |purpose, text: &str| Mode::Prompt { purpose, text: text.to_string() };
        match code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char(' ') => {
                if !self.playing && self.cursor + 1 >= self.timeline.len() {
                    self.status = "end of trace".into();
                } else {
                    self.playing = !self.playing;
                }
            }
            KeyCode::Right | KeyCode::Char('l') => self.step(true, 1),
            KeyCode::Left | KeyCode::Char('h') => self.step(false, 1),
            KeyCode::PageDown => self.step(true, PAGE_EVENTS),
            KeyCode::PageUp => self.step(false, PAGE_EVENTS),
            KeyCode::Home => self.step(false, usize::MAX),
            KeyCode::End => self.step(true, usize::MAX / 2),
            KeyCode::Char(']') => self.jump_stop(true),
            KeyCode::Char('[') => self.jump_stop(false),
            KeyCode::Char('g') => self.mode = prompt(Purpose::GoTo, ""),
            KeyCode::Char('/') => self.mode = prompt(Purpose::Search, ""),
            KeyCode::Char('n') => self.search_next(true),
            KeyCode::Char('N') => self.search_next(false),
            KeyCode::Char('f') => self.mode = prompt(Purpose::Filter, &self.filter.text.clone()),
            KeyCode::Char('+') | KeyCode::Char('=') => self.speed_index = (self.speed_index + 1).min(SPEEDS.len() - 1),
            KeyCode::Char('-') => self.speed_index = self.speed_index.saturating_sub(1),
            _ => {}
        }
    }
}
