//! The event list around the cursor and the selected event's details.

use models::trace::{Event, TraceKind, with_node_names};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use crate::tui::app::App;
use crate::tui::filter;

fn kind_style(kind: &TraceKind) -> Style {
    match kind {
        TraceKind::FaultStarted { .. } | TraceKind::NodeCrashed | TraceKind::InvariantViolated { .. } => {
            Style::new().fg(Color::Red)
        }
        TraceKind::EtcdHalted { .. } | TraceKind::DiskFailed { .. } | TraceKind::RaftSteppedDown { .. } => {
            Style::new().fg(Color::Red)
        }
        TraceKind::FaultHealed { .. } | TraceKind::NodeRestarted { .. } | TraceKind::RaftLeaderElected { .. } => {
            Style::new().fg(Color::Green)
        }
        TraceKind::RaftCampaign { .. } | TraceKind::Flapped { .. } | TraceKind::NodePaused => {
            Style::new().fg(Color::Yellow)
        }
        TraceKind::Metrics { .. } | TraceKind::MessageDropped { .. } | TraceKind::MessageSent { .. } => {
            Style::new().fg(Color::DarkGray)
        }
        _ => Style::new(),
    }
}

pub fn events(f: &mut Frame, area: Rect, app: &App) {
    let rows = area.height.saturating_sub(2) as usize;
    let listed = app.listed_len();
    let title = if app.filter.is_empty() {
        format!(" events ({listed}) ")
    } else {
        format!(" events: {} of {} match {:?} ", listed, app.timeline.len(), app.filter.text)
    };
    let block = Block::bordered().title(title);
    if listed == 0 {
        f.render_widget(Paragraph::new("no events match the filter").block(block), area);
        return;
    }
    // The cursor's row sits in the middle of the pane, except near either end of the list.
    let at = app.listed_before(app.cursor + 1).saturating_sub(1);
    let first = at.saturating_sub(rows / 2).min(listed.saturating_sub(rows));
    let lines: Vec<Line> = (first..(first + rows).min(listed))
        .map(|pos| {
            let i = app.listed(pos);
            let ev = &app.timeline.events[i];
            let text = filter::line(ev, &app.names);
            if i == app.cursor {
                Line::styled(format!("▶{text}"), Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
            } else {
                Line::styled(format!(" {text}"), kind_style(&ev.kind))
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// The event as it appears in `events.jsonl`, pretty-printed.
pub fn pretty(ev: &Event, names: &[String]) -> String {
    with_node_names(names, || serde_json::to_string_pretty(ev)).unwrap_or_else(|e| format!("(cannot print: {e})"))
}

pub fn details(f: &mut Frame, area: Rect, app: &App) {
    let ev = &app.timeline.events[app.cursor];
    let title = format!(" event {} ", ev.seq);
    f.render_widget(Paragraph::new(pretty(ev, &app.names)).block(Block::bordered().title(title)), area);
}
