//! The Cartridge double's control socket: its counters, its model, and the
//! faults and behaviours of real Cartridge a test switches on
//! (docs/tarantool-double.md).

use test_harness::TestContext;

use super::scenario::Failure;

/// Runs `chunk` on the double's control socket and returns its one reply
/// item as text (`- value` -> `value`, quotes undone).
pub async fn control(t: &TestContext, chunk: &str) -> Result<String, Failure> {
    let ports = std::fs::read_to_string(t.cp.repo().join("target/control-plane/run/ports.env"))
        .map_err(|e| Failure::Check(format!("ports.env: {e}")))?;
    let socket = ports
        .lines()
        .find_map(|l| l.strip_prefix("DOUBLE_CONTROL="))
        .ok_or_else(|| Failure::Check("no DOUBLE_CONTROL in ports.env".into()))?;
    let mut child = tokio::process::Command::new("tarantoolctl")
        .args(["connect", socket])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Failure::Check(format!("tarantoolctl: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(chunk.as_bytes())
            .await
            .map_err(|e| Failure::Check(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Failure::Check(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("- "))
        .map(|v| v.trim_matches('\'').replace("''", "'"))
        .ok_or_else(|| Failure::Check(format!("double: {chunk}: {text}")))
}

/// Calls `cartridge_double.<call>` on the control socket and expects `true`.
pub async fn set(t: &TestContext, call: &str) -> Result<(), Failure> {
    let reply = control(t, &format!("return require('cartridge_double').{call}")).await?;
    if reply == "true" {
        Ok(())
    } else {
        Err(Failure::Check(format!("double {call}: {reply}")))
    }
}

/// A JSON value from `require('cartridge_double').<call>` (encoded there).
pub async fn json(t: &TestContext, call: &str) -> Result<serde_json::Value, Failure> {
    let reply = control(
        t,
        &format!("return require('json').encode(require('cartridge_double').{call})"),
    )
    .await?;
    serde_json::from_str(&reply).map_err(|e| Failure::Check(format!("double {call} {reply}: {e}")))
}

/// Replica sets (by alias) the double's model holds for the test's
/// namespace: what Cartridge itself would say, not what any console says.
pub async fn replicaset_aliases(t: &TestContext) -> Result<Vec<String>, Failure> {
    let model = json(t, &format!("model('{}')", t.namespace)).await?;
    let mut aliases: Vec<String> = match model.get("replicasets") {
        Some(serde_json::Value::Object(map)) => map
            .values()
            .filter_map(|r| r.get("alias").and_then(|a| a.as_str()).map(str::to_string))
            .collect(),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|r| r.get("alias").and_then(|a| a.as_str()).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    aliases.sort();
    Ok(aliases)
}
