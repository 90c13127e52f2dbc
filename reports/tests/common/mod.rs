//! Shared by the report tests: running shipped scenarios in-process, and reading the HTML back
//! with a strict XML parser.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use roxmltree::{Document, Node, ParsingOptions};
use serde_json::Value;

pub fn scenario_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file)
}

/// Runs a shipped scenario; returns the output and the scenario's text.
pub fn run(file: &str, seed: Option<u64>) -> (sim::RunOutput, String) {
    let path = scenario_path(file);
    let sc = scenarios::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let out = sim::run(&sc, sim::RunOptions { seed, ..Default::default() });
    (out, std::fs::read_to_string(&path).unwrap())
}

/// Parses the page as XML (it must be well-formed); the `<!DOCTYPE html>` is allowed.
pub fn parse(html: &str) -> Document<'_> {
    let opts = ParsingOptions { allow_dtd: true, ..Default::default() };
    Document::parse_with_options(html, opts).unwrap_or_else(|e| panic!("report is not well-formed XML: {e}"))
}

pub fn by_attr<'a, 'i>(root: Node<'a, 'i>, tag: &str, attr: &str, value: &str) -> Vec<Node<'a, 'i>> {
    root.descendants().filter(|n| n.has_tag_name(tag) && n.attribute(attr) == Some(value)).collect()
}

pub fn with_attr<'a, 'i>(root: Node<'a, 'i>, tag: &str, attr: &str) -> Vec<Node<'a, 'i>> {
    root.descendants().filter(|n| n.has_tag_name(tag) && n.attribute(attr).is_some()).collect()
}

pub fn with_class<'a, 'i>(root: Node<'a, 'i>, tag: &str, class: &str) -> Vec<Node<'a, 'i>> {
    root.descendants()
        .filter(|n| n.has_tag_name(tag) && n.attribute("class").is_some_and(|c| c.split(' ').any(|x| x == class)))
        .collect()
}

/// Chart sections in page order, by `data-chart`.
pub fn chart_ids(doc: &Document) -> Vec<String> {
    with_attr(doc.root(), "section", "data-chart")
        .iter()
        .map(|n| n.attribute("data-chart").unwrap().to_string())
        .collect()
}

pub fn chart<'a, 'i>(doc: &'a Document<'i>, id: &str) -> Node<'a, 'i> {
    by_attr(doc.root(), "section", "data-chart", id).into_iter().next().unwrap_or_else(|| panic!("no chart {id}"))
}

/// A series path of a chart (`run`: its data-run, or None for a single run).
pub fn series<'a, 'i>(chart: Node<'a, 'i>, key: &str, run: Option<&str>) -> Node<'a, 'i> {
    by_attr(chart, "path", "data-series", key)
        .into_iter()
        .find(|n| n.attribute("data-run") == run)
        .unwrap_or_else(|| panic!("no series {key} ({run:?}) in {:?}", chart.attribute("data-chart")))
}

pub fn num(n: Node, attr: &str) -> f64 {
    n.attribute(attr).unwrap_or_else(|| panic!("no {attr}")).parse().unwrap()
}

/// summary.json value at a dotted path (keys hold no dots).
pub fn lookup<'a>(summary: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(summary, |v, k| if let Value::Array(a) = v { &a[k.parse::<usize>().unwrap()] } else { &v[k] })
}

/// Marks of a kind in a chart, counting those a thinned element stands for (`data-count`).
pub fn marks(chart: Node, kind: &str) -> u64 {
    chart
        .descendants()
        .filter(|n| n.attribute("data-mark") == Some(kind))
        .map(|n| n.attribute("data-count").expect("data-count").parse::<u64>().unwrap())
        .sum()
}
