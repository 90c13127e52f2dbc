//! compare.html: etcd-partial-partition with and without pre-vote, read back from run folders:
//! both runs on every chart, every numeric figure the two summaries share side by side with
//! B − A, and the setting that differs highlighted.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use reports::html::figures::numeric_leaves;

fn write_run(dir: &Path, file: &str) -> serde_json::Value {
    let (out, toml) = run(file, None);
    let names = out.world.names.clone();
    reports::write_dir_atomically(dir, |tmp| {
        reports::write_run_folder(tmp, &out.summary, &out.world.trace.events, &names, Some(&toml))
    })
    .unwrap();
    out.summary
}

fn base(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pgsim-compare-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn prevote_ab_comparison() {
    let base = base("ab");
    let (dir_a, dir_b) = (base.join("no-prevote"), base.join("prevote"));
    let sa = write_run(&dir_a, "etcd-partial-partition.toml");
    let sb = write_run(&dir_b, "etcd-partial-partition-prevote.toml");
    let out = base.join("cmp");
    let written = reports::html::write_compare(&dir_a, &dir_b, Some(&out)).unwrap();
    assert_eq!(written, out);
    let html = fs::read_to_string(out.join("compare.html")).unwrap();
    let doc = parse(&html);

    // Every chart carries both runs' series, fault windows and (where any) leader marks.
    let ids = chart_ids(&doc);
    assert!(ids.contains(&"etcd-leader".to_string()) && ids.contains(&"etcd-term".to_string()), "{ids:?}");
    for id in &ids {
        let c = chart(&doc, id);
        for tag in ["A", "B"] {
            let drawn = if id == "etcd-leader" {
                by_attr(c, "rect", "data-run", tag).iter().filter(|r| r.attribute("data-lane").is_some()).count()
            } else {
                with_attr(c, "path", "data-series").iter().filter(|p| p.attribute("data-run") == Some(tag)).count()
            };
            assert!(drawn > 0, "{id}: run {tag} drawn");
            let windows = with_class(c, "rect", "fault").into_iter().filter(|r| r.attribute("data-run") == Some(tag));
            assert!(windows.count() > 0, "{id}: run {tag}'s fault windows");
        }
    }
    // The legend names both runs.
    let legend: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("li") && n.attribute("data-series") == Some("highest term"))
        .map(|n| n.attribute("data-run").unwrap().to_string())
        .collect();
    assert_eq!(legend, ["A", "B"]);

    // Key figures: every numeric leaf present in both summaries, values and difference exact,
    // except those about the runs themselves (wall time, seed, engine counters).
    // Those that differ in the table, the unchanged ones folded away in a <details> below it.
    let changed = with_attr(by_attr(doc.root(), "table", "id", "key-figures")[0], "tr", "data-key");
    let unchanged = with_attr(by_attr(doc.root(), "table", "id", "key-figures-unchanged")[0], "tr", "data-key");
    assert!(changed.iter().all(|r| r.attribute("class") == Some("differs")));
    assert!(unchanged.iter().all(|r| r.attribute("class").is_none()));
    let folded = by_attr(doc.root(), "table", "id", "key-figures-unchanged")[0].parent().unwrap();
    assert!(folded.has_tag_name("details"), "unchanged figures are folded away");
    let mut rows = changed.clone();
    rows.extend(unchanged.iter().copied());
    // In summary order.
    let order = |k: &str| numeric_leaves(&sa).iter().position(|(key, _)| key == k);
    rows.sort_by_key(|r| order(r.attribute("data-key").unwrap()));
    let lb = numeric_leaves(&sb);
    let about_the_tool = |k: &str| k == "wall_seconds" || k == "seed" || k.starts_with("engine.");
    let shared: Vec<(String, f64, f64)> = numeric_leaves(&sa)
        .into_iter()
        .filter(|(k, _)| !about_the_tool(k))
        .filter_map(|(k, a)| lb.iter().find(|(kb, _)| *kb == k).map(|(_, b)| (k, a, *b)))
        .collect();
    assert!(rows.iter().all(|r| r.attribute("data-key") != Some("wall_seconds")), "wall time is noise, not a figure");
    assert_eq!(rows.len(), shared.len());
    for (row, (k, a, b)) in rows.iter().zip(&shared) {
        assert_eq!(row.attribute("data-key"), Some(k.as_str()));
        assert_eq!((num(*row, "data-a"), num(*row, "data-b")), (*a, *b), "{k}");
        assert_eq!(num(*row, "data-diff"), b - a, "{k}");
        assert_eq!(row.attribute("class") == Some("differs"), a != b, "{k}");
    }
    let keys: Vec<&str> = rows.iter().map(|r| r.attribute("data-key").unwrap()).collect();
    for must in
        ["sim_seconds", "events", "faults_injected", "network.delivered", "etcd.leader_changes", "etcd.max_term"]
    {
        assert!(keys.contains(&must), "{must}");
    }

    // The one setting the two scenarios differ in is flagged.
    let settings = by_attr(doc.root(), "table", "id", "settings")[0];
    let pre_vote = by_attr(settings, "tr", "data-key", "etcd.pre-vote")[0];
    assert_eq!(pre_vote.attribute("class"), Some("differs"));
    let cells: Vec<&str> = pre_vote.children().filter_map(|c| c.text()).collect();
    assert_eq!(cells, ["etcd.pre-vote", "false", "true"]);

    // Assertions of each run, by name, with each run's verdict.
    let arows = with_attr(by_attr(doc.root(), "table", "id", "assertions")[0], "tr", "data-name");
    let names = |s: &serde_json::Value| {
        s["assertions"].as_array().unwrap().iter().map(|a| a["name"].clone()).collect::<Vec<_>>()
    };
    let mut all = names(&sa);
    all.extend(names(&sb).into_iter().filter(|n| !names(&sa).contains(n)));
    assert_eq!(arows.len(), all.len());

    // Comparing again replaces the folder whole.
    fs::write(out.join("stale.txt"), "x").unwrap();
    reports::html::write_compare(&dir_a, &dir_b, Some(&out)).unwrap();
    assert!(!out.join("stale.txt").exists());
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn missing_folder_is_an_error_naming_the_file() {
    let base = base("missing");
    let err =
        reports::html::write_compare(&base.join("nope"), &base.join("nope2"), Some(&base.join("out"))).unwrap_err();
    assert!(err.to_string().contains("summary.json"), "{err}");
    assert!(!base.join("out").exists());
    assert_eq!(
        reports::html::default_compare_dir(Path::new("/x/runs/a"), Path::new("b")),
        PathBuf::from("compare-a-vs-b")
    );
    fs::remove_dir_all(&base).unwrap();
}
