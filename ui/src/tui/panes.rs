//! The state panes: topology, etcd, PostgreSQL and traffic. Each reads the fold at the cursor.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::state::{ActiveFault, Health, NodeState, RaftRole};
use crate::tui::{pg, timefmt};

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

/// Servers of every PostgreSQL cluster.
pub fn pg_server_count(app: &App) -> usize {
    app.state.pg.iter().map(|c| c.servers.len()).sum()
}

/// Rows the PostgreSQL pane needs: borders, the table's header, and per cluster a line, one row
/// a server and the last promotion once there is one.
pub fn postgres_rows(app: &App) -> u16 {
    if pg_server_count(app) == 0 {
        return 3;
    }
    let per_cluster: usize =
        app.state.pg.iter().map(|c| 1 + c.servers.len() + c.last_promotion.is_some() as usize).sum();
    (per_cluster + 3) as u16
}

fn pg_role_style(role: &str) -> Style {
    match role {
        "primary" => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        "standby" => Style::new(),
        "crashed" => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        "fenced" => Style::new().fg(Color::Red),
        _ => Style::new().fg(Color::Yellow),
    }
}

pub fn postgres(f: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(" postgresql ");
    if pg_server_count(app) == 0 {
        let text = Line::styled("no PostgreSQL nodes in this run", Style::new().fg(Color::DarkGray));
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(block), area);
        return;
    }
    let name = |n: u32| app.names.get(n as usize).map_or("?", String::as_str);
    let nodes = &app.state.nodes;
    let w = app.state.pg.iter().flat_map(|c| &c.servers).map(|s| s.name.len()).max().unwrap_or(0).max(2) + 1;
    // Most important first: a narrow terminal cuts the replication state and the upstream.
    let row = |name: &str, role: &str, tl: &str, sync: &str, lag: &str, bytes: &str, repl: &str, up: &str| {
        format!("{name:<w$}{role:<9}{tl:>3} {sync:<6} {lag:>5} {bytes:>5} {repl:<8} {up}")
    };
    let mut lines = vec![Line::styled(
        row("", "role", "tl", "sync", "lag", "bytes", "repl", "up"),
        Style::new().add_modifier(Modifier::UNDERLINED),
    )];
    for c in &app.state.pg {
        let mut head = vec![Span::styled(c.name.clone(), Style::new().add_modifier(Modifier::BOLD))];
        if pg::split_brain(c, nodes) {
            head.push(Span::raw(" "));
            head.push(Span::styled(
                " SPLIT BRAIN ",
                Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
        for s in c.servers.iter().filter(|s| s.commits_per_s.is_some() || s.timed_out_per_s.is_some()) {
            let mut text = format!(" {} {} commits/s", s.name, fmt_value(Some(s.commits_per_s.unwrap_or(0.0))));
            if let Some(t) = s.timed_out_per_s {
                text.push_str(&format!(", {} timed out/s", fmt_value(Some(t))));
            }
            head.push(Span::raw(text));
        }
        lines.push(Line::from(head));
        let sync = pg::sync_roles(c, nodes);
        for (s, sync) in c.servers.iter().zip(sync) {
            let role = pg::shown_role(s, nodes);
            let short_role = if role == "rebuilding" { "rebuild" } else { role };
            let lag = s.lag_s.map_or("-".into(), pg::seconds);
            let bytes = s.lag_bytes.map_or("-".into(), pg::bytes);
            let up = s.upstream.map_or("-", name);
            let text =
                row(&s.name, short_role, &s.tli.to_string(), sync.label(), &lag, &bytes, &pg::replication_label(s), up);
            lines.push(Line::styled(text, pg_role_style(role)));
        }
        if let Some(p) = &c.last_promotion {
            let loss = if p.accept_data_loss { " (loss ok)" } else { "" };
            lines.push(Line::styled(
                format!(
                    "promoted {} tl {}\u{2192}{} at {}{loss} {}",
                    name(p.node),
                    p.parent_tli,
                    p.tli,
                    pg::lsn(p.switch_lsn),
                    timefmt::clock(p.t_ns)
                ),
                Style::new().fg(Color::Magenta),
            ));
        }
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
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
    // The cursor's second, marked under the bars in the bottom border: visible without colour.
    let len_s = app.traffic.series.iter().map(|s| s.per_second.len()).max().unwrap_or(0);
    let range = window(cursor_s, len_s, spark_width);
    if range.contains(&cursor_s) && area.height >= 3 {
        let x = area.x + 1 + (LABEL_WIDTH + cursor_s - range.start) as u16;
        let marker = Rect { x, y: area.y + area.height - 1, width: 1, height: 1 };
        if x < area.x + area.width - 1 {
            f.render_widget(Paragraph::new(Span::styled(CURSOR_MARK, Style::new().fg(Color::Yellow))), marker);
        }
    }
}

/// Under the traffic pane's bars: the cursor's second.
pub const CURSOR_MARK: &str = "▲";

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
