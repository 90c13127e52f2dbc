//! Drawing: reads the app, never changes it. The screen, top to bottom: a header, topology
//! beside etcd and PostgreSQL, traffic sparklines, the event list beside the selected event's
//! details, and a footer with key hints, a prompt or a status line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::tui::app::{App, Mode};
use crate::tui::{list, panes, timefmt};

/// Below this the panes no longer fit; the screen says so instead of drawing garbage.
const MIN_WIDTH: u16 = 40;
const MIN_HEIGHT: u16 = 12;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("terminal {}x{} is too small for pgsim ui (80x24 or more)", area.width, area.height);
        f.render_widget(Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }), area);
        return;
    }
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    let traffic_rows = app.traffic.series.len().max(1) as u16 + 2;
    // The state panes get two fifths of the body, more if etcd's members and PostgreSQL's
    // servers need it (up to half); the event list takes what is left. A run with PostgreSQL
    // but no etcd members shows no etcd placeholder.
    let has_pg = panes::pg_server_count(app) > 0;
    let has_etcd = panes::member_count(app) > 0;
    let etcd_rows = if has_pg && !has_etcd { 0 } else { panes::etcd_rows(app) };
    let pg_rows = if has_pg { panes::postgres_rows(app) } else { 3 };
    let top_rows = (body.height * 2 / 5).max(etcd_rows + pg_rows).min(body.height / 2).max(8);
    let [top, traffic, bottom] =
        Layout::vertical([Constraint::Length(top_rows), Constraint::Length(traffic_rows), Constraint::Fill(1)])
            .areas(body);
    // Without etcd members the right column holds two placeholders: topology gets more. The
    // PostgreSQL table needs the width.
    let topology_percent = match (has_pg, has_etcd) {
        (true, _) => 40,
        (false, false) => 62,
        (false, true) => 50,
    };
    let [topology, right] =
        Layout::horizontal([Constraint::Percentage(topology_percent), Constraint::Fill(1)]).areas(top);
    // PostgreSQL's servers first: when rows are short (80x24) etcd shrinks, down to its
    // bordered title, which still names the leader and term.
    let etcd_min = if etcd_rows > 0 { 2 } else { 0 };
    let etcd_height = etcd_rows.min(top_rows.saturating_sub(pg_rows)).max(etcd_min).min(top_rows.saturating_sub(3));
    let [etcd, postgres] = Layout::vertical([Constraint::Length(etcd_height), Constraint::Fill(1)]).areas(right);
    let [events, details] = Layout::horizontal([Constraint::Percentage(58), Constraint::Fill(1)]).areas(bottom);

    f.render_widget(header_line(app), header);
    panes::topology(f, topology, app);
    if etcd.height > 0 {
        panes::etcd(f, etcd, app);
    }
    panes::postgres(f, postgres, app);
    panes::traffic(f, traffic, app);
    list::events(f, events, app);
    list::details(f, details, app);
    f.render_widget(footer_line(app), footer);
    if app.mode == Mode::Help {
        help(f, area);
    }
}

fn header_line(app: &App) -> Paragraph<'static> {
    let sep = Span::styled(" │ ", Style::new().fg(Color::DarkGray));
    let play = if app.playing { "▶" } else { "⏸" };
    // Most important first: a narrow terminal cuts the end of the line.
    let mut spans = vec![
        Span::styled(" pgsim ", Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(timefmt::clock(app.state.t_ns), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" / {}", timefmt::clock(app.timeline.end_ns()))),
        sep.clone(),
        Span::raw(format!("{play} {}x", app.speed())),
        sep.clone(),
        Span::raw(format!("event {}/{}", app.cursor, app.timeline.len().saturating_sub(1))),
        sep.clone(),
        Span::raw(format!("{} seed {}", app.scenario, app.seed)),
    ];
    if !app.filter.is_empty() {
        spans.push(sep);
        spans.push(Span::styled(format!("filter: {}", app.filter.text), Style::new().fg(Color::Cyan)));
    }
    Paragraph::new(Line::from(spans)).style(Style::new().bg(Color::Blue).fg(Color::White))
}

fn footer_line(app: &App) -> Paragraph<'static> {
    let line = match &app.mode {
        Mode::Prompt { purpose, text } => Line::from(vec![
            Span::styled(format!(" {}: ", purpose.label()), Style::new().fg(Color::Yellow)),
            Span::raw(text.clone()),
            Span::styled("█", Style::new().add_modifier(Modifier::SLOW_BLINK)),
        ]),
        _ if !app.status.is_empty() => {
            Line::from(Span::styled(format!(" {}", app.status), Style::new().fg(Color::Yellow)))
        }
        _ => Line::from(Span::styled(
            " ? help  space play  ←→ step  [] jump  g time  / search  f filter  q quit",
            Style::new().fg(Color::DarkGray),
        )),
    };
    Paragraph::new(line)
}

/// The `?` overlay: every key, what it does.
pub const HELP_KEYS: [(&str, &str); 14] = [
    ("space", "play / pause (simulated time at the speed shown)"),
    ("→ / l", "next event (of those listed)"),
    ("← / h", "previous event"),
    ("]", "next significant event (faults, elections, crashes, ...)"),
    ("[", "previous significant event"),
    ("PgDn / PgUp", "20 events forwards / backwards"),
    ("Home / End", "first / last event"),
    ("g", "go to a time: 14:49 (mm:ss), 1:02:03, 90s, +6m, -30s"),
    ("/", "search the event list (case-insensitive)"),
    ("n / N", "next / previous match"),
    ("f", "filter by kind prefix or node name (empty: all)"),
    ("+ / -", "playback faster / slower"),
    ("?", "this help (any key closes it)"),
    ("q / Ctrl-C", "quit"),
];

fn help(f: &mut Frame, area: Rect) {
    let width = 72.min(area.width);
    let height = (HELP_KEYS.len() as u16 + 4).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    let mut lines: Vec<Line> = HELP_KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![Span::styled(format!(" {key:<12}"), Style::new().fg(Color::Yellow)), Span::raw(*what)])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(" the panes show the state after the selected event", Style::new().fg(Color::DarkGray)));
    f.render_widget(Clear, popup);
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(" keys ")), popup);
}
