//! The state panes: topology, etcd, PostgreSQL and traffic. Each reads the fold at the cursor.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::state::{ActiveFault, Health, NodeState, RaftRole};
use crate::tui::timefmt;

const NS_PER_S: u64 = 1_000_000_000;

fn node_span(app: &App, n: u32) -> Span<'static> {
    let name = app.names.get(n as usize).cloned().unwrap_or_else(|| format!("#{n}"));
    let Some(s) = app.state.nodes.get(n as usize) else { return Span::raw(name) };
    let (tag, style) = node_tag(app.kinds.get(n as usize).copied().unwrap_or("?"), s);
    Span::styled(format!("{name} {tag}"), style)
}

/// How a node is: an etcd member's state ("leader", "candidate", "DOWN", ...); for other
/// nodes their kind (probes go without) and health ("up", "PAUSED", "DOWN").
fn node_tag(kind: &str, s: &NodeState) -> (String, Style) {
    if s.member.is_some() {
        let (state, style) = member_state(s);
        return (state.to_string(), style);
    }
    let (health, style) = match s.health {
        Health::Down => ("DOWN", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)),
        Health::Paused => ("PAUSED", Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)),
        Health::Up => ("up", Style::new().fg(Color::Green)),
    };
    if kind == "probe" { (health.to_string(), style) } else { (format!("{kind} {health}"), style) }
}

/// A switch's trouble, from the detail strings of active switch faults ("switch NAME ...").
fn switch_trouble<'a>(app: &'a App, switch: &str) -> Option<&'a ActiveFault> {
    app.state
        .faults
        .values()
        .find(|f| f.detail.strip_prefix("switch ").and_then(|rest| rest.split(' ').next()) == Some(switch))
}

fn switch_span(app: &App, switch: &str) -> Span<'static> {
    match switch_trouble(app, switch) {
        None => Span::styled(switch.to_string(), Style::new().fg(Color::DarkGray)),
        Some(f) => {
            let what = match (f.fault_kind.as_str(), f.flapped_down) {
                ("switch-down", _) | (_, Some(true)) => "DOWN",
                ("switch-flapping", _) => "flapping",
                _ => "DEGRADED",
            };
            Span::styled(format!("{switch} {what}"), Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
        }
    }
}

pub fn topology(f: &mut Frame, area: Rect, app: &App) {
    let mut lines = Vec::new();
    for region in &app.topology.regions {
        let mut head = vec![Span::styled(region.name.clone(), Style::new().add_modifier(Modifier::BOLD))];
        if !region.core_switch.is_empty() {
            head.push(Span::raw(" ["));
            head.push(switch_span(app, &region.core_switch));
            head.push(Span::raw("]"));
        }
        lines.push(Line::from(head));
        for rack in &region.racks {
            let mut spans = vec![Span::raw(format!(" {} ", rack.name))];
            if !rack.switch.is_empty() {
                spans.push(Span::raw("["));
                spans.push(switch_span(app, &rack.switch));
                spans.push(Span::raw("] "));
            }
            for (k, &n) in rack.nodes.iter().enumerate() {
                if k > 0 {
                    spans.push(Span::styled(" · ", Style::new().fg(Color::DarkGray)));
                }
                spans.push(node_span(app, n));
            }
            lines.push(Line::from(spans));
        }
    }
    if app.state.faults.is_empty() {
        lines.push(Line::styled("no active faults", Style::new().fg(Color::DarkGray)));
    }
    for (i, fault) in &app.state.faults {
        let now = match fault.flapped_down {
            Some(true) => " [down now]",
            Some(false) => " [up now]",
            None => "",
        };
        lines.push(Line::styled(
            format!("#{i} {}{now} since {}", fault.detail, timefmt::clock(fault.since_ns)),
            Style::new().fg(Color::Red),
        ));
    }
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(" topology ")),
        area,
    );
}

pub fn member_count(app: &App) -> usize {
    app.state.nodes.iter().filter(|n| n.member.is_some()).count()
}

/// Rows the etcd pane needs: borders (the top one carries the leader), the table's header and
/// one row a member.
pub fn etcd_rows(app: &App) -> u16 {
    match member_count(app) {
        0 => 3,
        n => n as u16 + 3,
    }
}

pub fn etcd(f: &mut Frame, area: Rect, app: &App) {
    if member_count(app) == 0 {
        let text = Line::styled("no etcd members in this run", Style::new().fg(Color::DarkGray));
        let block = Block::bordered().title(" etcd ");
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(block), area);
        return;
    }
    let name = |i: usize| app.names.get(i).map_or("?", String::as_str);
    let title = match (&app.state.leader, app.state.leaderless_since_ns) {
        (Some(l), _) => Span::styled(
            format!(" etcd leader {} term {} since {} ", name(l.node as usize), l.term, timefmt::clock(l.since_ns)),
            Style::new().fg(Color::Green),
        ),
        (None, Some(since)) => Span::styled(
            format!(" etcd: no leader since {} ", timefmt::clock(since)),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        (None, None) => Span::raw(" etcd: no leader "),
    };
    let block = Block::bordered().title(title);
    let mut lines = Vec::new();
    let members: Vec<(usize, &NodeState)> =
        app.state.nodes.iter().enumerate().filter(|(_, n)| n.member.is_some()).collect();
    let w = members.iter().map(|&(i, _)| name(i).len()).max().unwrap_or(0).max(3) + 1;
    // `since` is last: on a narrow terminal it is what gets cut.
    lines.push(Line::styled(
        format!("{:<w$}{:<10}{:>4}{:>10} {}", "", "state", "term", "campaigns", "since"),
        Style::new().add_modifier(Modifier::UNDERLINED),
    ));
    for &(i, n) in &members {
        let m = n.member.as_ref().expect("filtered to members");
        let (state, style) = member_state(n);
        // A campaign in progress shows when it began; otherwise when the role or health changed.
        let since = if n.health == Health::Up { m.role_since_ns.max(n.health_since_ns) } else { n.health_since_ns };
        lines.push(Line::styled(
            format!("{:<w$}{:<10}{:>4}{:>10} {}", name(i), state, m.term, m.campaigns, timefmt::clock(since)),
            style,
        ));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// A member's state in at most nine characters.
fn member_state(n: &NodeState) -> (&'static str, Style) {
    let role = n.member.as_ref().map_or(RaftRole::Follower, |m| m.role);
    match (n.health, n.halted, role) {
        (Health::Down, _, _) => ("DOWN", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)),
        (Health::Paused, _, _) => ("PAUSED", Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)),
        (Health::Up, true, _) => ("HALTED", Style::new().fg(Color::Red)),
        (Health::Up, false, RaftRole::Leader) => ("leader", Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)),
        (Health::Up, false, RaftRole::Candidate) => ("candidate", Style::new().fg(Color::Yellow)),
        (Health::Up, false, RaftRole::PreCandidate) => ("pre-vote", Style::new().fg(Color::Yellow)),
        (Health::Up, false, RaftRole::Follower) => ("follower", Style::new()),
    }
}

pub fn postgres(f: &mut Frame, area: Rect) {
    // The PostgreSQL model arrives with a later issue; the pane holds its place.
    let text = Line::styled("no PostgreSQL nodes in this run", Style::new().fg(Color::DarkGray));
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }).block(Block::bordered().title(" postgresql ")),
        area,
    );
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const LABEL_WIDTH: usize = 19;
const VALUE_WIDTH: usize = 9;

/// The window of seconds shown: centred on the cursor's second, kept inside the run.
fn window(cursor_s: usize, len_s: usize, width: usize) -> std::ops::Range<usize> {
    let start = cursor_s.saturating_sub(width / 2).min(len_s.saturating_sub(width));
    start..(start + width).min(len_s)
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

pub fn traffic(f: &mut Frame, area: Rect, app: &App) {
    let cursor_s = (app.state.t_ns / NS_PER_S) as usize;
    let inner_width = area.width.saturating_sub(2) as usize;
    let spark_width = inner_width.saturating_sub(LABEL_WIDTH + VALUE_WIDTH + 1);
    let mut lines = Vec::new();
    for s in &app.traffic.series {
        let range = window(cursor_s, s.per_second.len(), spark_width);
        let max = s.per_second[range.clone()].iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let mut spans = vec![Span::raw(format!("{:<LABEL_WIDTH$}", s.label))];
        for sec in range {
            let bar = match s.per_second[sec] {
                Some(v) if v > 0.0 && max > 0.0 => BARS[((v / max * 7.0).round() as usize).min(7)],
                _ => ' ',
            };
            // Seconds after the cursor are the future of the replay: shown, but dimmed.
            let style = match sec.cmp(&cursor_s) {
                std::cmp::Ordering::Less => Style::new().fg(Color::Cyan),
                std::cmp::Ordering::Equal => Style::new().fg(Color::Black).bg(Color::Yellow),
                std::cmp::Ordering::Greater => Style::new().fg(Color::DarkGray),
            };
            spans.push(Span::styled(bar.to_string(), style));
        }
        let at_cursor = s.per_second.get(cursor_s).copied().flatten();
        spans.push(Span::raw(format!(" {:>VALUE_WIDTH$}", fmt_value(at_cursor))));
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::styled("no metrics in this trace", Style::new().fg(Color::DarkGray)));
    }
    let title = format!(" traffic per second, around {} s (bars scaled to the window's max) ", cursor_s);
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_centres_the_cursor_and_stays_inside() {
        assert_eq!(window(50, 120, 20), 40..60);
        assert_eq!(window(3, 120, 20), 0..20);
        assert_eq!(window(119, 120, 20), 100..120);
        assert_eq!(window(5, 8, 20), 0..8);
    }
}
