//! The `strategy list`, `strategy check` and `plan` commands, run as a user
//! runs them: the real binary, its output and exit code.

#[path = "../strategy/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

use tarantool_operator::timeline::render::{RenderOptions, render_svg};

fn operator(args: &[&str]) -> Output {
    let cache = support::workspace().join("target").join("cli-test-cache");
    Command::new(env!("CARGO_BIN_EXE_tarantool-operator"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .current_dir(support::workspace())
        .output()
        .expect("run tarantool-operator")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn strategy_list_shows_every_builtin() {
    let out = operator(&["strategy", "list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for name in ["OnDelete", "ClusterPartitionUpdate", "SwitchMasterUpdate"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(text.contains("param batchSize"), "{text}");
}

#[test]
fn check_passes_the_builtins() {
    for name in ["SwitchMasterUpdate", "ClusterPartitionUpdate", "OnDelete"] {
        let out = operator(&["strategy", "check", name, "--cases", "6"]);
        let text = stdout(&out);
        assert!(out.status.success(), "{name}:\n{text}");
        assert!(text.contains("clean: 6 of 6"), "{text}");
    }
    // OnDelete deletes nothing itself: the checker plays the human.
    let text = stdout(&operator(&[
        "strategy", "check", "OnDelete", "--cases", "2",
    ]));
    assert!(
        text.contains("0 deletions") && text.contains("deleted by hand"),
        "{text}"
    );
}

#[test]
fn check_passes_the_example_custom_strategy_from_its_file() {
    let out = operator(&[
        "strategy",
        "check",
        tarantool_operator::strategy::builtin::EXAMPLE_COMPONENT_PATH,
        "--cases",
        "4",
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("loaded Canary"));
}

#[test]
fn check_fails_a_strategy_that_deletes_the_master_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("master-first.wasm");
    std::fs::write(
        &path,
        support::build_guest("hostile-strategy", &["master-first"]),
    )
    .expect("write");
    let out = operator(&[
        "strategy",
        "check",
        path.to_str().expect("utf-8"),
        "--cases",
        "3",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("MasterDeletion") || text.contains("master"),
        "{text}"
    );
    assert!(text.contains("3 of 3 runs failed"), "{text}");
}

#[test]
fn check_refuses_a_file_that_is_not_a_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "not wasm at all").expect("write");
    let out = operator(&["strategy", "check", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a WebAssembly binary"), "{err}");
}

#[test]
fn plan_prints_the_steps_of_a_described_role() {
    let out = operator(&[
        "plan",
        "--strategy",
        "SwitchMasterUpdate",
        "--role",
        "examples/roles/storage.yaml",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    // The not-ready replica goes first; every master switches before it goes.
    assert!(text.contains("delete storage-1-2"), "{text}");
    for rs in ["storage-0", "storage-1", "storage-2"] {
        let switch = text
            .find(&format!("switch master of {rs}"))
            .expect("a switch");
        let old_master = if rs == "storage-1" {
            "storage-1-1"
        } else {
            &format!("{rs}-0")
        };
        let delete = text
            .find(&format!("delete {old_master}"))
            .expect("master deleted");
        assert!(switch < delete, "{rs}: switch after delete:\n{text}");
    }
    assert!(text.contains("completed"), "{text}");
}

#[test]
fn plan_output_is_bounded_and_clean_for_a_strategy_that_waits_forever() {
    let wasm = support::build_guest("hostile-strategy", &["wait-forever"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wait-forever.wasm");
    std::fs::write(&path, wasm).expect("write");
    let out = operator(&[
        "plan",
        "--strategy",
        path.to_str().expect("utf-8 path"),
        "--role",
        "examples/roles/storage.yaml",
    ]);
    let text = stdout(&out);
    assert!(!out.status.success(), "it never completes");
    // 400 MB before the bound: now the first 200 and last 20 steps.
    assert!(out.stdout.len() < 2 << 20, "{} bytes", out.stdout.len());
    assert!(text.contains("steps not shown"), "{:.2000}", text);
    for output in [&out.stdout, &out.stderr] {
        assert!(!output.contains(&0x1b), "a raw escape reached the terminal");
    }
    // One line per step: the forged line break became a space.
    assert!(!text.lines().any(|l| l.starts_with("INFO forged")));
}

#[test]
fn plan_takes_params_from_the_command_line() {
    let out = operator(&[
        "plan",
        "--strategy",
        "ClusterPartitionUpdate",
        "--role",
        "examples/roles/routers.yaml",
        "--param",
        "batchSize=2",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("at most 2 pods unavailable at once"),
        "{text}"
    );
}

// ---- crds: the command behind `make crds` (the CRDs themselves are checked
// in host/api/tests/crds.rs)

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
    assert_eq!(
        text,
        tarantool_operator::api::crds::yaml_stream().expect("renders")
    );
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

// ---- timeline: the command over the recorded run the timeline crate's
// tests describe (host/timeline/tests/timeline.rs)

fn timeline_fixture_path() -> std::path::PathBuf {
    support::workspace().join("host/timeline/tests/fixtures/timeline-run.jsonl")
}

fn timeline_fixture() -> Vec<tarantool_operator::timeline::Record> {
    let file = std::fs::File::open(timeline_fixture_path()).expect("the fixture exists");
    tarantool_operator::timeline::read_jsonl(std::io::BufReader::new(file))
        .expect("the fixture parses")
}

#[test]
fn the_command_writes_svg_and_html_and_prints_the_path() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for name in ["timeline.svg", "timeline.html"] {
        let out_path = dir.path().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_tarantool-operator"))
            .arg("timeline")
            .arg("--from")
            .arg(timeline_fixture_path())
            .arg("--out")
            .arg(&out_path)
            .output()
            .expect("run tarantool-operator");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            out_path.display().to_string()
        );
        let written = std::fs::read_to_string(&out_path).expect("written");
        let svg = render_svg(&timeline_fixture(), &RenderOptions::default());
        if name.ends_with(".html") {
            assert!(written.starts_with("<!DOCTYPE html>") && written.contains(&svg));
        } else {
            assert_eq!(written, svg);
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tarantool-operator"))
        .args(["timeline", "--from", "/nonexistent/run.jsonl"])
        .output()
        .expect("run tarantool-operator");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/run.jsonl"));
}
