//! The terminal UI driven through its real main loop on ratatui's `TestBackend`: screens at
//! several cursor positions of shipped scenarios (insta snapshots), the help overlay, a
//! filtered list, resizing, playback, and loading a saved run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ui::tui::load::Run;
use ui::tui::{App, Input, run_loop};

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(format!("{name}.toml"))
}

fn simulate(name: &str) -> Run {
    let sc = scenarios::load(&scenario_path(name)).expect("shipped scenario loads");
    Run::simulate(&sc, None)
}

/// Each scenario runs once per test binary; every test gets its own copy.
fn smoke() -> Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate("network-smoke")).clone()
}

fn etcd_partial() -> Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate("etcd-partial-partition")).clone()
}

fn pg_async_promotion_loss() -> Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate("pg-async-promotion-loss")).clone()
}

fn stack_primary_crash() -> Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| simulate("stack-primary-crash")).clone()
}

/// Keys as typed: each char one key press; `\n` is Enter.
fn typed(text: &str) -> Vec<Input> {
    text.chars().map(|c| if c == '\n' { Input::key(KeyCode::Enter) } else { Input::char(c) }).collect()
}

/// Runs the real loop over `inputs` on a `width` x `height` test terminal; returns the
/// terminal (its backend holds the last frame) and the app.
fn drive(run: Run, width: u16, height: u16, inputs: Vec<Input>) -> (Terminal<TestBackend>, App) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut app = App::new(run);
    let mut inputs = inputs.into_iter();
    run_loop(&mut terminal, &mut app, |_| Ok(inputs.next())).unwrap();
    (terminal, app)
}

fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buf = terminal.backend().buffer();
    let width = buf.area.width as usize;
    let symbols: Vec<&str> = buf.content.iter().map(|c| c.symbol()).collect();
    symbols.chunks(width).map(|row| row.concat().trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn smoke_at_the_start() {
    // One step in: event 0's details would show pgsim_version, which changes with releases.
    let (t, app) = drive(smoke(), 100, 30, typed("l"));
    assert_eq!(app.cursor, 1);
    insta::assert_snapshot!(screen(&t));
}

#[test]
fn smoke_at_significant_events_degraded_switch_and_flapping_link() {
    // run_started, fault 0 (switch) at 10 s, fault 2 (flapping) at 20 s, its first flap.
    let (t, app) = drive(smoke(), 100, 30, typed("]]]"));
    assert_eq!(app.timeline.events[app.cursor].kind.name(), "flapped");
    let s = screen(&t);
    assert!(s.contains("pdx-core DEGRADED") && s.contains("[down now]"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn smoke_paused_node_at_80x24() {
    let (t, _) = drive(smoke(), 80, 24, typed("g1:12\n"));
    let s = screen(&t);
    assert!(s.contains("p2 PAUSED"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn smoke_crashed_node_reached_backwards_from_the_end() {
    // End, then back over run_finished, the heal of l2's crash and its restart: l2 is down.
    let mut inputs = vec![Input::key(KeyCode::End)];
    inputs.extend(typed("[[["));
    let (t, app) = drive(smoke(), 100, 30, inputs);
    assert_eq!(app.timeline.events[app.cursor].kind.name(), "node_crashed");
    let s = screen(&t);
    assert!(s.contains("l2 DOWN"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn etcd_partial_partition_candidate_runs_ahead_at_80x24() {
    let (t, app) = drive(etcd_partial(), 80, 24, typed("g1:10\n"));
    let s = screen(&t);
    let e1 = &app.state.nodes[0].member.as_ref().unwrap();
    assert!(e1.term > 30, "e1's term runs away while cut off: {}", e1.term);
    assert!(s.contains("leader e3 term 2"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn etcd_partial_partition_after_the_heal() {
    let (t, app) = drive(etcd_partial(), 100, 30, typed("g1:30\n"));
    let leader = app.state.leader.as_ref().expect("a leader after the heal");
    assert!(leader.term > 30, "elected above e1's runaway term: {}", leader.term);
    insta::assert_snapshot!(screen(&t));
}

#[test]
fn pg_async_promotion_loss_before_the_promotion() {
    // s1 streams asynchronously behind a 3 MB/s link while p writes about 4 MB/s: lag grows.
    let (t, app) = drive(pg_async_promotion_loss(), 100, 30, typed("g0:50\n"));
    let c = &app.state.pg[0];
    assert_eq!(c.last_promotion, None);
    let s1 = &c.servers[1];
    let streaming = Some(models::trace::ReplicationState::Streaming);
    assert_eq!((s1.role.as_str(), s1.tli, s1.replication.clone()), ("standby", 1, streaming));
    assert!(s1.lag_bytes.unwrap() > 10e6, "s1 lags by tens of MB: {:?}", s1.lag_bytes);
    let s = screen(&t);
    assert!(s.contains("p 1000 commits/s") && s.contains("async") && !s.contains("SPLIT BRAIN"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn pg_async_promotion_loss_after_the_promotion_at_80x24() {
    let (t, app) = drive(pg_async_promotion_loss(), 80, 24, typed("g1:10\n"));
    let c = &app.state.pg[0];
    let p = c.last_promotion.as_ref().expect("s1 was promoted at 65 s");
    assert_eq!((p.node, p.parent_tli, p.tli, p.accept_data_loss), (1, 1, 2, true));
    assert_eq!((c.servers[1].role.as_str(), c.servers[1].tli), ("primary", 2));
    let s = screen(&t);
    assert!(s.contains("crashed") && s.contains("promoted s1") && s.contains("(loss ok)"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn pg_sync_standby_loss_shows_the_synchronous_set_then_timed_out_commits() {
    let run = simulate("pg-sync-standby-loss");
    let (t, app) = drive(run.clone(), 100, 30, typed("g0:20\n"));
    let s = screen(&t);
    let row = |name: &str| s.lines().find(|l| l.contains(&format!("│{name} "))).unwrap_or_default().to_string();
    assert!(row("strict-s1").contains(" sync ") && row("async-s1").contains(" async "), "{s}");
    assert!(app.state.pg.iter().all(|c| !ui::tui::pg::split_brain(c, &app.state.nodes)));
    let (t, _) = drive(run, 100, 30, typed("g1:10\n"));
    let s = screen(&t);
    let row = |name: &str| s.lines().find(|l| l.contains(&format!("│{name} "))).unwrap_or_default().to_string();
    assert!(row("strict-s1").contains("crashed") && !row("strict-s1").contains("stream"), "{s}");
    assert!(s.contains("strict-p 0 commits/s, 1000 timed out/s"), "{s}");
}

#[test]
fn help_overlay() {
    let (t, app) = drive(smoke(), 80, 24, typed("]?"));
    assert_eq!(app.mode, ui::tui::app::Mode::Help);
    let s = screen(&t);
    assert!(s.contains(" keys ") && s.contains("go to a time"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn any_key_closes_help_and_q_quits_from_it() {
    let (_, app) = drive(smoke(), 80, 24, typed("?x"));
    assert_eq!((app.mode, app.quit), (ui::tui::app::Mode::Normal, false));
    let (_, app) = drive(smoke(), 80, 24, typed("?q"));
    assert!(app.quit);
}

#[test]
fn filtered_event_list() {
    let (t, app) = drive(etcd_partial(), 100, 30, typed("fraft e1\n]]]]"));
    assert!(app.listed_len() > 30 && app.listed_len() < app.timeline.len());
    for pos in 0..app.listed_len() {
        let ev = &app.timeline.events[app.listed(pos)];
        assert!(ev.kind.name().starts_with("raft") && ev.node.map(|n| n.0) == Some(0), "{ev:?}");
    }
    let s = screen(&t);
    assert!(s.contains("match \"raft e1\""), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn stepping_backwards_shows_what_stepping_forwards_showed() {
    let forwards = drive(etcd_partial(), 100, 30, typed("g1:21\n")).0;
    // From the end, back to the same time: snapshot + replay must land on the same state.
    let mut inputs = vec![Input::key(KeyCode::End)];
    inputs.extend(typed("g1:21\n"));
    let backwards = drive(etcd_partial(), 100, 30, inputs).0;
    assert_eq!(screen(&forwards), screen(&backwards));
    // And one event at a time: right then left returns to the same screen.
    let mut inputs = typed("g1:21\n");
    inputs.extend([Input::key(KeyCode::Right), Input::key(KeyCode::Right), Input::key(KeyCode::Left)]);
    inputs.push(Input::key(KeyCode::Left));
    assert_eq!(screen(&drive(etcd_partial(), 100, 30, inputs).0), screen(&forwards));
}

#[test]
fn search_moves_to_the_next_match_and_wraps() {
    let (_, app) = drive(smoke(), 100, 30, typed("/node_crashed\n"));
    assert_eq!(app.timeline.events[app.cursor].kind.name(), "node_crashed");
    let first = app.cursor;
    let (_, app) = drive(smoke(), 100, 30, typed("/node_crashed\nn"));
    assert_eq!(app.cursor, first, "only one crash: n wraps around to it");
    assert!(app.status.starts_with("search wrapped"), "{}", app.status);
    let (_, app) = drive(smoke(), 100, 30, typed("/no such thing\n"));
    assert_eq!((app.cursor, app.status.as_str()), (0, "no match for \"no such thing\""));
}

#[test]
fn playback_advances_simulated_time_at_the_chosen_speed() {
    let mut inputs = typed(" ");
    inputs.extend((0..10).map(|_| Input::Tick { elapsed_ms: 100 }));
    let (_, app) = drive(smoke(), 100, 30, inputs.clone());
    let t = app.timeline.events[app.cursor].t_ns;
    assert!(app.playing && t <= 1_000_000_000 && t > 900_000_000, "1 s of wall time at 1x: {t}");
    // Two steps faster is 5x.
    let mut faster = typed("++");
    faster.extend(inputs);
    let (_, app) = drive(smoke(), 100, 30, faster);
    assert_eq!(app.speed(), 5.0);
    let t = app.timeline.events[app.cursor].t_ns;
    assert!(t <= 5_000_000_000 && t > 4_000_000_000, "5 s at 5x: {t}");
    // Playback stops at the end of the trace.
    let mut to_end = typed("g1:59\n ");
    to_end.extend((0..30).map(|_| Input::Tick { elapsed_ms: 100 }));
    let (_, app) = drive(smoke(), 100, 30, to_end);
    assert!(!app.playing && app.cursor == app.timeline.len() - 1);
    assert_eq!(app.status, "end of trace");
}

#[test]
fn resizes_from_large_to_80x24_and_below() {
    let mut terminal = Terminal::new(TestBackend::new(140, 45)).unwrap();
    let mut app = App::new(smoke());
    let mut step = 0;
    run_loop(&mut terminal, &mut app, |_| {
        step += 1;
        Ok(match step {
            1 => Some(Input::char(']')),
            _ => None,
        })
    })
    .unwrap();
    let large = screen(&terminal);
    assert_eq!(large.split('\n').count(), 45);
    for (w, h) in [(80, 24), (30, 8), (100, 30)] {
        terminal.backend_mut().resize(w, h);
        let mut sent = false;
        run_loop(&mut terminal, &mut app, |_| Ok((!std::mem::replace(&mut sent, true)).then_some(Input::Resize)))
            .unwrap();
        let s = screen(&terminal);
        assert_eq!(s.split('\n').count(), h as usize);
        if w < 40 {
            assert!(s.contains("too small"), "{s}");
        } else {
            assert!(s.contains("topology") && s.contains("events"), "{s}");
        }
    }
}

#[test]
fn a_saved_run_opens_with_its_scenario_topology_or_without() {
    let sc = scenarios::load(&scenario_path("etcd-partial-partition")).unwrap();
    let out = sim::run(&sc, sim::RunOptions::default());
    let dir = std::env::temp_dir().join(format!("pgsim-tui-saved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    reports::write_events(&dir.join("events.jsonl"), &out.world.trace.events, &out.world.names).unwrap();
    reports::write_json(&dir.join("summary.json"), &out.summary).unwrap();

    let saved = Run::from_dir(&dir).unwrap();
    assert_eq!(saved.events.len(), out.world.trace.events.len());
    for (a, b) in saved.events.iter().zip(&out.world.trace.events) {
        assert_eq!(a, b, "events.jsonl reads back to the same events");
    }
    assert_eq!(saved.topology.regions.len(), 1);
    assert_eq!(saved.topology.regions[0].racks.len(), 3, "racks from the scenario file");
    assert_eq!(saved.kinds, ["etcd", "etcd", "etcd", "writer"]);

    // Without summary.json: one flat rack, kinds inferred from the trace.
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let bare = Run::from_dir(&dir).unwrap();
    assert_eq!(bare.topology.regions[0].racks[0].nodes, [0, 1, 2, 3]);
    assert_eq!(bare.kinds, ["etcd", "etcd", "etcd", "writer"]);
    let (t, _) = drive(bare, 100, 30, typed("g1:10\n"));
    assert!(screen(&t).contains("(topology unknown)"));

    std::fs::write(dir.join("events.jsonl"), "{\"seq\":0}\n").unwrap();
    let err = Run::from_dir(&dir).err().unwrap();
    assert!(err.contains("events.jsonl:1: the first event must be run_started"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stolon rewrites synchronous_standby_names after a failover: the pane shows the set in force,
/// not the scenario's first one (`FIRST 1 (pdx-pg2)`, which would leave pdx-pg3 async).
#[test]
fn stack_primary_crash_after_the_failover_shows_the_new_synchronous_standby() {
    let (t, _) = drive(stack_primary_crash(), 100, 30, typed("g2:30\n"));
    let s = screen(&t);
    let row = |name: &str| s.lines().find(|l| l.contains(&format!("│{name} "))).unwrap_or_default().to_string();
    assert!(row("pdx-pg2").contains("primary"), "{s}");
    assert!(row("pdx-pg3").contains(" sync "), "pdx-pg3 is the synchronous standby by now: {s}");
    insta::assert_snapshot!(s);
}

/// The traffic pane marks the cursor's second under its bars, in line with the highlighted
/// column, so it shows without colour too.
#[test]
fn the_traffic_sparklines_mark_the_cursor() {
    let (t, app) = drive(smoke(), 100, 30, typed("g1:00\n"));
    let buf = t.backend().buffer();
    let marks: Vec<(u16, u16)> = (0..buf.area.height)
        .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
        .filter(|&(x, y)| buf[(x, y)].symbol() == ui::tui::panes::CURSOR_MARK)
        .collect();
    assert_eq!(marks.len(), 1, "one marker: {marks:?}");
    let (x, y) = marks[0];
    assert_eq!(buf[(x, y - 1)].bg, ratatui::style::Color::Yellow, "under the highlighted second");
    assert_eq!(app.state.t_ns / 1_000_000_000, 60);
}

/// Stolon's reasons in the event list name servers and sentinels, not node numbers ("follow
/// node 4 instead of node 3" told a reader nothing).
#[test]
fn stolon_reasons_name_servers_not_node_numbers() {
    let run = stack_primary_crash();
    let mut follows = 0;
    for ev in &run.events {
        let models::trace::TraceKind::Stolon { what, reason, .. } = &ev.kind else { continue };
        let numbered = reason.split("node ").skip(1).any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        assert!(!numbered, "{what}: {reason}");
        follows += usize::from(
            *what == models::trace::StolonWhat::KeeperFollow && reason.ends_with("follow pdx-pg2 instead of pdx-pg1"),
        );
    }
    assert_eq!(follows, 1, "pdx-pg3 follows the new primary after the failover");
}

/// At 80x24 the PostgreSQL pane shows every server (etcd's pane shrinks to its title, which
/// names the leader), not just the first.
#[test]
fn stack_primary_crash_at_80x24_shows_every_postgresql_server() {
    let (t, _) = drive(stack_primary_crash(), 80, 24, typed("g2:30\n"));
    let s = screen(&t);
    for name in ["pdx-pg1", "pdx-pg2", "pdx-pg3"] {
        assert!(s.lines().any(|l| l.contains(&format!("│{name} "))), "{name} in the PostgreSQL pane: {s}");
    }
    assert!(s.contains("etcd leader etcd1"), "{s}");
    insta::assert_snapshot!(s);
}

/// `pgsim ui --trace DIR` from another folder: summary.json's scenario_path is relative to
/// where the run was made, but the folder's own scenario.toml is there.
#[test]
fn a_saved_run_opened_from_elsewhere_uses_its_own_scenario_copy() {
    let path = scenario_path("etcd-partial-partition");
    let (sc, text) = scenarios::load_with_source(&path).unwrap();
    let out = sim::run(&sc, sim::RunOptions::default());
    let dir = std::env::temp_dir().join(format!("pgsim-tui-elsewhere-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut summary = out.summary.clone();
    summary["scenario_path"] = "scenarios/etcd-partial-partition.toml".into();
    reports::write_run_folder(&dir, &summary, &out.world.trace.events, &out.world.names, Some(&text)).unwrap();
    assert!(!Path::new("scenarios/etcd-partial-partition.toml").exists(), "the relative path leads nowhere from here");

    let saved = Run::from_dir(&dir).unwrap();
    assert_eq!(saved.topology.regions[0].racks.len(), 3, "racks from the folder's scenario.toml");
    assert_eq!(saved.kinds, ["etcd", "etcd", "etcd", "writer"]);
    let (t, _) = drive(saved, 100, 30, typed("g1:10\n"));
    assert!(!screen(&t).contains("(topology unknown)"));

    // A copy that no longer matches the trace is not used.
    std::fs::write(dir.join("scenario.toml"), text.replace("[scenario]", "# edited\n[scenario]")).unwrap();
    assert_eq!(Run::from_dir(&dir).unwrap().topology.regions[0].racks.len(), 1, "flat, as without a scenario");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pgsim_ui_refuses_bad_input_with_exit_code_2() {
    let pgsim = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pgsim")).args(args).output().expect("runs pgsim")
    };
    let no_file = pgsim(&["ui"]);
    assert_eq!(no_file.status.code(), Some(2), "{}", String::from_utf8_lossy(&no_file.stderr));
    let both = pgsim(&["ui", "x.toml", "--trace", "dir"]);
    assert_eq!(both.status.code(), Some(2));
    let missing = pgsim(&["ui", "--trace", "/nonexistent/pgsim-run"]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/pgsim-run/events.jsonl"), "{stderr}");
    let bad_scenario = pgsim(&["ui", "/nonexistent/scenario.toml"]);
    assert_eq!(bad_scenario.status.code(), Some(2));
}
