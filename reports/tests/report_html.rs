//! report.html for shipped scenarios run in-process: well-formed, the charts whose data the
//! trace has (and no others), fault windows and leader changes on every chart, and numbers that
//! agree with summary.json.

mod common;

use common::*;
use models::trace::TraceKind;

#[test]
fn etcd_flapping_link_report_agrees_with_its_summary() {
    let (out, toml) = run("etcd-flapping-link.toml", None);
    let s = &out.summary;
    let html = reports::html::render_report(&out.world.trace.events, s, Some(&toml));
    let doc = parse(&html);

    // etcd and network charts; no probes or disks in this scenario, so none of theirs.
    let ids = chart_ids(&doc);
    assert_eq!(ids, ["net-delivered", "net-dropped", "etcd-leader", "etcd-term", "etcd-writes", "etcd-write-latency"]);

    // Every chart shades the one fault's window, with its down phases, and marks every leader
    // change (thinned marks count for the ones they stand for).
    let sc = scenarios::load(&scenario_path("etcd-flapping-link.toml")).unwrap();
    let flaps_down =
        out.world.trace.events.iter().filter(|e| matches!(e.kind, TraceKind::Flapped { down: true, .. })).count();
    assert!(flaps_down >= 10, "the fault flaps for a minute every 4 s: {flaps_down}");
    let leader_changes = s["etcd"]["leader_changes"].as_u64().unwrap();
    assert!(leader_changes >= 2);
    for id in &ids {
        let c = chart(&doc, id);
        let windows = with_class(c, "rect", "fault");
        assert_eq!(windows.len(), 1, "{id}: one fault window");
        assert_eq!(windows[0].attribute("data-fault-kind"), Some("link-flapping"));
        assert!(!with_class(c, "rect", "down").is_empty(), "{id}: down phases shaded");
        assert_eq!(marks(c, "leader"), leader_changes, "{id}: every leader change marked");
        assert_eq!(marks(c, "operator"), 1, "{id}: the move-leader action");
    }

    // Counters summed over the chart's seconds equal the run's totals.
    let total = |chart_id: &str, key: &str| num(series(chart(&doc, chart_id), key, None), "data-total");
    assert_eq!(total("net-delivered", "delivered"), s["network"]["delivered"].as_f64().unwrap());
    assert_eq!(total("net-dropped", "link_down"), s["network"]["dropped"]["link_down"].as_f64().unwrap());
    assert_eq!(total("etcd-writes", "ok"), s["etcd"]["writes_ok"].as_f64().unwrap());
    assert_eq!(total("etcd-writes", "failed"), s["etcd"]["writes_failed"].as_f64().unwrap());
    let resumed =
        out.world.trace.events.iter().filter(|e| matches!(e.kind, TraceKind::EtcdWritesResumed { .. })).count();
    assert_eq!(marks(chart(&doc, "etcd-writes"), "writes-resumed") as usize, resumed);
    assert!(resumed > 0);

    // The term step line ends at the highest term; the leader lanes hold every election.
    let term = series(chart(&doc, "etcd-term"), "highest term", None);
    assert!(term.children().any(|t| t.text().is_some_and(|x| x.contains(&format!("(max {})", s["etcd"]["max_term"])))));
    let lanes = chart(&doc, "etcd-leader");
    let lane_names: std::collections::BTreeSet<&str> =
        with_attr(lanes, "rect", "data-lane").iter().map(|r| r.attribute("data-lane").unwrap()).collect();
    assert!(lane_names.iter().all(|n| ["e1", "e2", "e3"].contains(n)), "{lane_names:?}");
    assert!(lane_names.len() >= 2, "leadership moved: {lane_names:?}");
    let spells: u64 = with_attr(lanes, "rect", "data-lane")
        .iter()
        .map(|r| {
            let t = r.children().find(|c| c.has_tag_name("title")).unwrap().text().unwrap();
            t.split_once(" spells").map_or(1, |(a, _)| a.rsplit(' ').next().unwrap().parse().unwrap())
        })
        .sum();
    assert_eq!(spells, leader_changes, "one lane spell per election won");

    // Tables: assertions, faults, settings and key figures as summary.json and the scenario say.
    let rows = with_attr(by_attr(doc.root(), "table", "id", "assertions")[0], "tr", "data-name");
    let expected = s["assertions"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, a) in rows.iter().zip(expected) {
        assert_eq!(row.attribute("data-name"), a["name"].as_str());
        assert_eq!(row.attribute("data-passed"), Some(if a["passed"].as_bool().unwrap() { "true" } else { "false" }));
    }
    let faults = with_attr(by_attr(doc.root(), "table", "id", "faults")[0], "tr", "data-fault");
    assert_eq!(faults.len(), sc.faults.len());
    assert_eq!(num(faults[0], "data-start-s"), sc.faults[0].at.as_secs_f64());
    assert_eq!(num(faults[0], "data-end-s"), sc.faults[0].until.unwrap().as_secs_f64());
    let settings = by_attr(doc.root(), "table", "id", "settings")[0];
    let pre_vote = by_attr(settings, "tr", "data-key", "etcd.pre-vote")[0];
    assert_eq!(pre_vote.children().nth(1).and_then(|c| c.text()), Some("false"));
    let figures = with_attr(by_attr(doc.root(), "table", "id", "key-figures")[0], "tr", "data-key");
    for key in ["etcd.leader_changes", "etcd.max_term", "etcd.write_unavailable_seconds", "network.delivered", "events"]
    {
        let row = figures.iter().find(|r| r.attribute("data-key") == Some(key)).unwrap_or_else(|| panic!("{key}"));
        assert_eq!(num(*row, "data-value"), lookup(s, key).as_f64().unwrap(), "{key}");
    }
    for row in &figures {
        let key = row.attribute("data-key").unwrap();
        assert_eq!(num(*row, "data-value"), lookup(s, key).as_f64().unwrap(), "{key}");
    }
}

#[test]
fn probe_scenario_gets_probe_and_disk_charts_and_every_fault() {
    let (out, toml) = run("network-smoke.toml", None);
    let s = &out.summary;
    let html = reports::html::render_report(&out.world.trace.events, s, Some(&toml));
    let doc = parse(&html);
    let ids = chart_ids(&doc);
    for id in ["net-delivered", "net-dropped", "probe-rtt", "probe-timeouts", "disk-fsync"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    assert!(!ids.iter().any(|i| i.starts_with("etcd")), "no etcd in this run: {ids:?}");

    let faults = s["faults_injected"].as_u64().unwrap() as usize;
    assert!(faults >= 5);
    for id in &ids {
        let c = chart(&doc, id);
        assert_eq!(with_class(c, "rect", "fault").len(), faults, "{id}: a window per fault");
        for p in with_attr(c, "path", "data-series") {
            assert!(num(p, "data-points") <= 1500.0);
            assert!(p.attribute("d").unwrap().starts_with('M'), "{id}: drawn");
        }
    }
    // The RTT chart shows p50 and p99 of the pairs with the worst p99, at most 4 pairs.
    let rtt = with_attr(chart(&doc, "probe-rtt"), "path", "data-series");
    assert!(rtt.len() <= 8 && rtt.len().is_multiple_of(2), "{}", rtt.len());
    // Per-reason drop totals agree with summary.json's.
    let dropped = chart(&doc, "net-dropped");
    for p in with_attr(dropped, "path", "data-series") {
        let reason = p.attribute("data-series").unwrap();
        assert_eq!(num(p, "data-total"), s["network"]["dropped"][reason].as_f64().unwrap(), "{reason}");
    }
    // Timed-out pings per pair sum to the summary's, for the pairs shown.
    for p in with_attr(chart(&doc, "probe-timeouts"), "path", "data-series") {
        let pair = p.attribute("data-series").unwrap();
        assert_eq!(num(p, "data-total"), s["probe"]["pairs"][pair]["timed_out"].as_f64().unwrap(), "{pair}");
    }
    // The probe pairs table lists every pair with its figures.
    let pairs = with_attr(by_attr(doc.root(), "table", "id", "probe-pairs")[0], "tr", "data-pair");
    assert_eq!(pairs.len(), s["probe"]["pairs"].as_object().unwrap().len());
}

#[test]
fn run_folder_holds_every_output_and_a_parsable_report() {
    let (out, toml) = run("etcd-partial-partition.toml", None);
    let dir = std::env::temp_dir().join(format!("pgsim-report-folder-{}", std::process::id()));
    let names = out.world.names.clone();
    reports::write_dir_atomically(&dir, |tmp| {
        reports::write_run_folder(tmp, &out.summary, &out.world.trace.events, &names, Some(&toml))
    })
    .unwrap();
    for f in ["summary.json", "events.jsonl", "metrics.csv", "scenario.toml", "report.html"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let doc = parse(&html);
    assert!(chart_ids(&doc).contains(&"etcd-leader".to_string()));
    // Reading the folder back gives the same page as the in-memory trace did.
    let run = reports::html::Run::load("", &dir).unwrap();
    assert_eq!(run.skipped_lines, 0);
    assert_eq!(reports::html::page::report(&run), html);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stack run's report: client charts whose totals agree with summary.json, a primary lane per
/// database, and a failover mark at the promotion.
#[test]
fn stack_report_shows_what_clients_saw_and_where_the_primary_was() {
    let (out, _) = run("stack-primary-crash.toml", None);
    let html = reports::html::page::report(&reports::html::Run::from_trace(
        "",
        &out.world.trace.events,
        out.summary.clone(),
        None,
    ));
    let doc = parse(&html);
    let ids = chart_ids(&doc);
    for id in ["availability", "latency", "requests", "primary", "pg-commits"] {
        assert!(ids.contains(&id.to_string()), "chart {id} missing: {ids:?}");
    }
    let s = &out.summary["stack"];
    let requests = chart(&doc, "requests");
    let ok = num(series(requests, "ok", None), "data-total");
    assert_eq!(ok, s["requests"]["ok"].as_f64().unwrap(), "successes charted = summary");
    let timed_out = num(series(requests, "timed_out", None), "data-total");
    assert_eq!(timed_out, s["errors_by_kind"]["timed_out"].as_f64().unwrap());
    // The failover is marked where the summary says it happened.
    let at = s["failovers"][0]["at_seconds"].as_f64().unwrap();
    assert_eq!(marks(chart(&doc, "availability"), "failover"), 1, "one failover marked on the chart");
    assert!(html.contains("pdx-pg2 promoted (pdx, timeline 2)"), "mark labelled with the promotion");
    assert!(at > 60.0 && at < 100.0);
    // The primary lane names both primaries in turn.
    let lane_text: String = chart(&doc, "primary").descendants().filter_map(|n| n.text()).collect();
    assert!(lane_text.contains("pdx-pg1") && lane_text.contains("pdx-pg2"), "{lane_text}");
}

/// The primary chart shows each spell as its own segment in its server's colour, named in the
/// chart's key, and the key names the failover line (issue 19: it drew one bar for both).
#[test]
fn primary_chart_draws_each_spell_in_its_servers_colour_with_a_key() {
    let (out, _) = run("stack-primary-crash.toml", None);
    let html = reports::html::render_report(&out.world.trace.events, &out.summary, None);
    let doc = parse(&html);
    let primary = chart(&doc, "primary");
    let segs: Vec<(String, String, f64, f64)> = with_class(primary, "rect", "seg")
        .iter()
        .map(|r| {
            let state = r.attribute("data-state").unwrap().to_string();
            (state, r.attribute("fill").unwrap().to_string(), num(*r, "x"), num(*r, "x") + num(*r, "width"))
        })
        .collect();
    let states: Vec<&str> = segs.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(states, ["pdx-pg1 (timeline 1)", "pdx-pg2 (timeline 2)"], "two spells, not one merged bar");
    assert_ne!(segs[0].1, segs[1].1, "each server its own colour");
    assert!(segs[0].3 < segs[1].2, "a gap between the crash and the promotion: no primary then");
    let key: Vec<&str> =
        primary.descendants().filter_map(|n| n.attribute("data-state").filter(|_| n.has_tag_name("li"))).collect();
    assert_eq!(key, ["pdx-pg1", "pdx-pg2"]);
    for id in ["primary", "availability"] {
        let keys: Vec<&str> = chart(&doc, id).descendants().filter_map(|n| n.attribute("data-mark-key")).collect();
        assert!(keys.contains(&"failover"), "{id}: the key names the failover line: {keys:?}");
    }
    // The first tenant's latency lines are drawn last, on top of the others; the key keeps
    // the catalog's order.
    let latency = chart(&doc, "latency");
    let drawn: Vec<&str> =
        with_attr(latency, "path", "data-series").iter().map(|p| p.attribute("data-series").unwrap()).collect();
    let keyed: Vec<&str> =
        with_attr(latency, "li", "data-series").iter().map(|p| p.attribute("data-series").unwrap()).collect();
    assert_eq!(keyed, ["api p50", "api p99", "dashboard p50", "dashboard p99"]);
    assert_eq!(drawn, ["dashboard p99", "dashboard p50", "api p99", "api p50"]);
    // Labels on the segments name the servers.
    let labels: Vec<&str> = with_class(primary, "text", "seg-label").iter().filter_map(|n| n.text()).collect();
    assert_eq!(labels, ["pdx-pg1 (timeline 1)", "pdx-pg2 (timeline 2)"]);
}

/// On a long run, each short incident gets panels on a time axis of its own: the fault and the
/// failover are wide there, not a few pixels of the overview.
#[test]
fn a_short_incident_in_a_long_run_gets_zoomed_panels() {
    let (mut out, _) = run("stack-primary-crash.toml", None);
    // Stretch the run to 2 hours after its end: nothing more happens, as in the 2020 replay's
    // long quiet stretches.
    let end_ns = 7200 * 1_000_000_000u64;
    let last = out.world.trace.events.len() - 1;
    out.world.trace.events[last].t_ns = end_ns;
    out.world.trace.events[last].kind = TraceKind::RunFinished { sim_ns: end_ns };
    let html = reports::html::render_report(&out.world.trace.events, &out.summary, None);
    let doc = parse(&html);
    let incidents = with_class(doc.root(), "section", "incident");
    assert_eq!(incidents.len(), 1, "the crash at 60 s and the failover at 90 s make one incident");
    let panel = incidents[0];
    let (start, end) = (num(panel, "data-start-s"), num(panel, "data-end-s"));
    assert!(start < 60.0 && end > 91.0 && end - start < 200.0, "{start}..{end}");
    let title: String =
        panel.descendants().find(|n| n.has_tag_name("h3")).unwrap().descendants().filter_map(|n| n.text()).collect();
    assert!(title.contains("node-crash") && title.contains("a failover"), "{title}");
    let charts: Vec<&str> = panel.descendants().filter_map(|n| n.attribute("data-incident-chart")).collect();
    assert_eq!(charts, ["primary", "availability", "requests", "pg-commits"]);
    // In the panel the gap without a primary is wide; in the 2-hour overview it is a sliver.
    let gap_px = |chart: roxmltree::Node| {
        let segs = with_class(chart, "rect", "seg");
        num(segs[1], "x") - (num(segs[0], "x") + num(segs[0], "width"))
    };
    let zoomed = panel.descendants().find(|n| n.attribute("data-incident-chart") == Some("primary")).unwrap();
    assert!(gap_px(zoomed) > 100.0, "zoomed: {} px", gap_px(zoomed));
    assert!(gap_px(chart(&doc, "primary")) < 10.0, "overview: {} px", gap_px(chart(&doc, "primary")));
    assert_eq!(marks(zoomed, "failover"), 1);
    assert!(html.contains(r##"href="#incidents""##), "linked from the top");
}
