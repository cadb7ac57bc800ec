//! `crds/` holds what the Rust types generate, and the Helm chart carries the
//! same files (`tarantool-operator crds`, which writes them, is tested in
//! host/tests/cli.rs).

use std::collections::BTreeSet;
use std::path::PathBuf;

use tarantool_operator_api::crds;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds")
}

#[test]
fn crds_directory_is_up_to_date() {
    if let Err(e) = crds::check(&crds_dir()) {
        panic!("{e}\n(the CRDs are generated from host/api; commit the regenerated files)");
    }
}

/// Helm installs a chart's `crds/` before its templates (and never upgrades
/// them): the chart must ship exactly the generated CRDs.
fn chart_crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/tarantool-operator/crds")
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
