//! The timeline picture of a recorded run (`tests/fixtures/timeline-run.jsonl`:
//! a SwitchMasterUpdate of two replica sets of three pods). The `timeline`
//! command that draws it is tested in host/tests/cli.rs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;
use tarantool_operator_timeline::render::{RenderOptions, render_svg};
use tarantool_operator_timeline::{Kind, Record, read_jsonl};

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timeline-run.jsonl")
}

fn fixture() -> Vec<Record> {
    let file = std::fs::File::open(fixture_path()).expect("the fixture exists");
    read_jsonl(std::io::BufReader::new(file)).expect("the fixture parses")
}

fn count(records: &[Record], kind: Kind) -> usize {
    records.iter().filter(|r| r.kind == kind).count()
}

#[test]
fn the_fixture_is_what_the_tests_say() {
    let records = fixture();
    let pods: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r.pod.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(pods.len(), 6);
    assert_eq!(count(&records, Kind::Deleted), 6);
    assert_eq!(count(&records, Kind::Master), 2);
    assert!(
        records.windows(2).all(|w| w[0].t <= w[1].t),
        "in time order"
    );
}

#[test]
fn the_picture_has_a_row_per_pod_and_a_mark_per_record() {
    let records = fixture();
    let svg = render_svg(&records, &RenderOptions::default());

    let labels = Regex::new(r#"<text class="pod-label"[^>]*>([^<]*)</text>"#).expect("regex");
    let mut rows: Vec<&str> = labels
        .captures_iter(&svg)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    let expected: Vec<String> = ["storage-0-7dfd9f68f", "storage-1-7dfd9f68f"]
        .iter()
        .flat_map(|rs| (0..3).map(move |n| format!("{rs}-{n}")))
        .collect();
    assert_eq!(
        rows, expected,
        "one label per pod, grouped, in ordinal order"
    );
    rows.dedup();
    assert_eq!(rows.len(), 6);
    assert_eq!(svg.matches(r#"class="group-label""#).count(), 2);

    assert_eq!(
        svg.matches(r#"<g class="deleted""#).count() - 1, // one in the legend
        count(&records, Kind::Deleted)
    );
    assert_eq!(
        svg.matches(r#"<g class="master""#).count(),
        count(&records, Kind::Master)
    );
    assert_eq!(
        svg.matches(r#"<g class="step-mark">"#).count() - 1, // legend
        count(&records, Kind::Step)
    );
    assert!(svg.contains("<title>storage-0-7dfd9f68f-1: became master at"));
    assert!(svg.contains("(was storage-0-7dfd9f68f-0)"));
    assert!(svg.contains("Update of storage"), "default title");
    assert!(svg.contains("total 44.9 s"), "total duration");
}

#[test]
fn bars_are_in_time_order_and_coloured_by_revision() {
    let svg = render_svg(&fixture(), &RenderOptions::default());
    let bar = Regex::new(
        r#"<rect class="bar (rev-[a-z]+)" data-pod="([^"]+)" data-start="([0-9.]+)" data-end="([0-9.]+)""#,
    )
    .expect("regex");
    let mut per_pod: BTreeMap<String, Vec<(String, f64, f64)>> = BTreeMap::new();
    for c in bar.captures_iter(&svg) {
        let num = |i: usize| c[i].parse::<f64>().expect("a number");
        per_pod
            .entry(c[2].to_string())
            .or_default()
            .push((c[1].to_string(), num(3), num(4)));
    }
    assert_eq!(per_pod.len(), 6);
    let end = per_pod
        .values()
        .flatten()
        .map(|b| b.2)
        .fold(0.0_f64, f64::max);
    // The last record (the final step) is 44.879 s after the first.
    assert_eq!(end, 44.879);
    for (pod, bars) in &per_pod {
        // Ready on the old revision from the start until deleted, then on
        // the new one until the end.
        let classes: Vec<&str> = bars.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(classes, ["rev-old", "rev-new"], "{pod}: {bars:?}");
        assert!(bars[0].1 < 0.1, "{pod}: ready from the start: {bars:?}");
        for b in bars {
            assert!(b.1 <= b.2, "{pod}: {b:?}");
        }
        for w in bars.windows(2) {
            assert!(
                w[0].2 <= w[1].1,
                "{pod}: bars overlap or go back in time: {bars:?}"
            );
        }
        assert_eq!(bars[1].2, end, "{pod}: the last bar runs to the end");
    }
}

#[test]
fn text_is_escaped() {
    let svg = render_svg(
        &fixture(),
        &RenderOptions {
            title: Some("<script>alert('x')</script> & co".into()),
        },
    );
    assert!(!svg.contains("<script>"));
    assert!(svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
    // The fixture's step messages carry `&` and `<=`.
    assert!(svg.contains("ready &amp; healthy (&lt;= 1 unavailable)"));
    for (i, _) in svg.match_indices('&') {
        let rest = &svg[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "a bare & at {i}: {}",
            &rest[..rest.len().min(40)]
        );
    }
}

#[test]
fn the_same_run_renders_to_the_same_bytes() {
    let records = fixture();
    let a = render_svg(&records, &RenderOptions::default());
    let mut shuffled = records.clone();
    shuffled.reverse();
    // Records with equal times keep their order when sorted: reversing
    // changes nothing only if no two share a time, which the fixture ensures.
    let b = render_svg(&shuffled, &RenderOptions::default());
    assert_eq!(a, render_svg(&records, &RenderOptions::default()));
    assert_eq!(a, b);
}

#[test]
fn the_documented_example_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/timeline-example.svg");
    let on_disk = std::fs::read_to_string(&path).expect("docs/timeline-example.svg exists");
    assert!(
        on_disk == render_svg(&fixture(), &RenderOptions::default()),
        "docs/timeline-example.svg is stale; regenerate it with\n  cargo run -p tarantool-operator -- timeline \\\n    --from host/timeline/tests/fixtures/timeline-run.jsonl --out docs/timeline-example.svg"
    );
}
