//! The operator binary run as a local process, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use test_harness::TestContext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The operator binary: `HARNESS_OPERATOR_BIN`, else the workspace build.
pub fn operator_bin(t: &TestContext) -> Result<PathBuf, String> {
    let path = std::env::var_os("HARNESS_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| t.cp.repo().join("target/debug/tarantool-operator"));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: cargo build -p tarantool-operator",
            path.display()
        ))
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// `GET path` on 127.0.0.1:port: (status code, body).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// `tarantool-operator run` scoped to one namespace, on free metrics and
/// health ports, logging (appending) to `log`; killed when dropped.
pub fn spawn_operator(
    bin: &Path,
    kubeconfig: &Path,
    namespace: &str,
    log: &Path,
    extra: &[String],
) -> Result<tokio::process::Child, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    // Ports the kernel picks as the operator binds them (no caller reads
    // them): operators of tests running side by side must not fight over
    // the default ones, and a port picked beforehand (`free_port`) can be
    // taken by another test before the operator binds it.
    // A caller that reads them passes its own.
    let given = |flag: &str| extra.iter().any(|e| e.starts_with(flag));
    let ports = [
        ("--metrics-addr", "--metrics-addr=127.0.0.1:0"),
        ("--health-addr", "--health-addr=127.0.0.1:0"),
    ]
    .into_iter()
    .filter(|(flag, _)| !given(flag))
    .map(|(_, default)| default.to_string());
    tokio::process::Command::new(bin)
        .args([
            "run",
            "--namespace",
            namespace,
            "--poll-seconds",
            "1",
            "--log-level",
            "info",
        ])
        .args(ports)
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))
}

/// The operator binary on the test's namespace with `flags`, logging to a
/// fresh file: the child and its log.
pub fn start_operator(
    t: &test_harness::TestContext,
    flags: &[&str],
) -> Result<(tokio::process::Child, PathBuf), super::scenario::Failure> {
    use super::scenario::Failure;
    let bin = operator_bin(t).map_err(Failure::Check)?;
    let log = std::env::temp_dir().join(format!("{}-operator.log", t.namespace));
    let _ = std::fs::remove_file(&log);
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let child = spawn_operator(&bin, &t.cp.kubeconfig(), &t.namespace, &log, &flags)
        .map_err(Failure::Check)?;
    Ok((child, log))
}

/// The last `lines` lines of a log file.
pub fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Ends a test that ran the operator binary: stops it, and on failure
/// prints the end of its log before passing `outcome` on.
pub async fn finish(
    child: &mut tokio::process::Child,
    log: &Path,
    outcome: Result<(), super::scenario::Failure>,
) -> Result<(), super::scenario::Failure> {
    let _ = child.start_kill();
    if outcome.is_err() {
        eprintln!("--- operator log ---\n{}", tail(log, 60));
    }
    outcome
}
