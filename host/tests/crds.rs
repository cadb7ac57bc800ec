//! `crds/` holds what the Rust types generate, the Helm chart carries the
//! same files, and `tarantool-operator crds` prints and checks the same.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use tarantool_operator::api::crds;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[test]
fn crds_directory_is_up_to_date() {
    if let Err(e) = crds::check(&crds_dir()) {
        panic!("{e}\n(the CRDs are generated from host/src/api; commit the regenerated files)");
    }
}

/// Helm installs a chart's `crds/` before its templates (and never upgrades
/// them): the chart must ship exactly the generated CRDs.
fn chart_crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/tarantool-operator/crds")
}

#[test]
fn chart_crds_are_the_generated_ones() {
    if let Err(e) = crds::check(&chart_crds_dir()) {
        panic!(
            "the Helm chart's CRDs: {e}\n(`make crds` writes crds/ and charts/tarantool-operator/crds/)"
        );
    }
    // Nothing else either: Helm would install any other file in there too.
    let expected: BTreeSet<String> = crds::files()
        .expect("renders")
        .into_iter()
        .map(|f| f.file_name.to_string())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(chart_crds_dir())
        .expect("charts/tarantool-operator/crds exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(present, expected, "files in charts/tarantool-operator/crds");
}

#[test]
fn crds_command_prints_both_definitions() {
    let out = Command::new(env!("CARGO_BIN_EXE_tarantool-operator"))
        .arg("crds")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, crds::yaml_stream().expect("renders"));
    for name in ["clusters.tarantool.io", "roles.tarantool.io"] {
        assert!(text.contains(&format!("name: {name}")), "{name}");
    }
}

#[test]
fn crds_check_flags_a_stale_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tarantool-operator"))
            .arg("crds")
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let path = dir.path().to_str().expect("utf-8 temp path");
    let missing = run(&["--check", path]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("make crds"));
    assert!(run(&["--write", path]).status.success());
    assert_eq!(run(&["--check", path]).status.code(), Some(0));
    std::fs::write(dir.path().join("role.yaml"), "edited\n").expect("write");
    let stale = run(&["--check", path]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("role.yaml"));
}
