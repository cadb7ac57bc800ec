//! The `strategy list`, `strategy check` and `plan` commands, run as a user
//! runs them: the real binary, its output and exit code.

mod support;

use std::process::{Command, Output};

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
        env!("TARANTOOL_OPERATOR_EXAMPLE_WASM"),
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
