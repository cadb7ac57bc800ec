//! How an encoded chunk reaches a console and its reply comes back.
//!
//! A transport runs ONE line (see [`protocol`](super::protocol)) and returns
//! stdout, stderr and the exit status, bounding stdout at `max_reply` bytes.
//! The whole-exchange timeout is the caller's ([`Console`](super::Console)):
//! dropping a transport's future ends the exchange (the local process is
//! killed, the exec stream or the socket is closed).

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::ConsoleError;
use super::protocol::{self, GREETING_LEN};

/// Stands for the encoded chunk in a console command. When an argument
/// contains it, the chunk is passed there (without its final newline)
/// instead of on stdin: the fallback for exec paths that cannot close stdin,
/// e.g. `["sh", "-c", "echo \"$1\" | exec tarantoolctl connect ...", "x", "{chunk}"]`.
pub const CHUNK_PLACEHOLDER: &str = "{chunk}";

/// Stderr kept for error messages (its end: that is where errors are).
const MAX_STDERR: usize = 64 * 1024;

/// How a console command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code (0: success).
    Code(i32),
    /// It did not run or ended without an exit code (exec refused, killed by
    /// a signal): the message says why.
    Failed(String),
}

/// What came back from one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOutput {
    /// The reply (stdout), at most `max_reply` bytes.
    pub stdout: Vec<u8>,
    /// The end of stderr (banners, tarantoolctl's error report).
    pub stderr: String,
    /// How it ended.
    pub exit: Exit,
}

/// Carries one encoded chunk to a console and its reply back.
#[async_trait]
pub trait ConsoleTransport: Send + Sync + fmt::Debug {
    /// What this transport reaches (pod, socket path), for messages.
    fn target(&self) -> String;

    /// Runs `line` (one encoded chunk ending in `\n`); stdout beyond
    /// `max_reply` bytes is [`ConsoleError::ReplyTooLarge`].
    async fn run(&self, line: &str, max_reply: usize) -> Result<TransportOutput, ConsoleError>;
}

/// The command line to run and what to write to its stdin: the chunk goes
/// in place of [`CHUNK_PLACEHOLDER`] if an argument has it, else to stdin.
pub(super) fn command_with_chunk(command: &[String], line: &str) -> (Vec<String>, Option<String>) {
    if command.iter().any(|a| a.contains(CHUNK_PLACEHOLDER)) {
        let chunk = line.trim_end_matches('\n');
        let argv = command
            .iter()
            .map(|a| a.replace(CHUNK_PLACEHOLDER, chunk))
            .collect();
        (argv, None)
    } else {
        (command.to_vec(), Some(line.to_string()))
    }
}

/// Reads to EOF, failing once more than `max` bytes arrived.
async fn read_bounded<R: AsyncRead + Unpin>(
    reader: Option<R>,
    max: usize,
) -> Result<Vec<u8>, ConsoleError> {
    let mut buf = Vec::new();
    let Some(reader) = reader else {
        return Ok(buf);
    };
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| ConsoleError::Unreachable {
            message: format!("reading the reply: {e}"),
        })?;
    if buf.len() > max {
        return Err(ConsoleError::ReplyTooLarge { limit: max });
    }
    Ok(buf)
}

/// Reads to EOF keeping the last [`MAX_STDERR`] bytes; keeps draining so a
/// chatty command never blocks on a full pipe.
async fn read_tail<R: AsyncRead + Unpin>(reader: Option<R>) -> String {
    let mut kept = Vec::new();
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut chunk = vec![0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * MAX_STDERR {
                    kept.drain(..kept.len() - MAX_STDERR);
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&kept);
    protocol::tail(&text, MAX_STDERR).to_string()
}

/// Writes the chunk and closes stdin (EOF is what makes `tarantoolctl
/// connect` run it). A failed write is only logged: the command's exit
/// status and stderr tell why it stopped reading.
async fn feed<W: tokio::io::AsyncWrite + Unpin>(writer: Option<W>, data: Option<String>) {
    let (Some(mut writer), Some(data)) = (writer, data) else {
        return;
    };
    if let Err(e) = writer.write_all(data.as_bytes()).await {
        tracing::debug!(error = %e, "console command did not take its stdin");
        return;
    }
    if let Err(e) = writer.shutdown().await {
        tracing::debug!(error = %e, "closing the console command's stdin failed");
    }
}

/// The console command run in a pod over the `pods/exec` subresource: what
/// the operator uses (no network path to the instance is needed).
#[derive(Clone)]
pub struct ExecTransport {
    pods: Api<Pod>,
    pod: String,
    container: Option<String>,
    command: Vec<String>,
}

impl fmt::Debug for ExecTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecTransport")
            .field("pod", &self.pod)
            .field("container", &self.container)
            .field("command", &self.command)
            .finish()
    }
}

impl ExecTransport {
    /// Runs `command` (`{instance}` already substituted) in `container` (or
    /// the pod's first) of `pod`; `pods` is namespaced.
    pub fn new(
        pods: Api<Pod>,
        pod: String,
        container: Option<String>,
        command: Vec<String>,
    ) -> Self {
        Self {
            pods,
            pod,
            container,
            command,
        }
    }
}

/// How an exec ended, from the status the apiserver relays at the end.
fn exec_exit(status: Option<Status>) -> Exit {
    let Some(status) = status else {
        return Exit::Failed("the exec stream ended without a status".into());
    };
    if status.status.as_deref() == Some("Success") {
        return Exit::Code(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse::<i32>().ok());
    match code {
        Some(code) => Exit::Code(code),
        None => Exit::Failed(format!(
            "exec failed: {}",
            status.message.as_deref().unwrap_or("no message")
        )),
    }
}

#[async_trait]
impl ConsoleTransport for ExecTransport {
    fn target(&self) -> String {
        format!(
            "pod {}/{}",
            self.pods.namespace().unwrap_or_default(),
            self.pod
        )
    }

    async fn run(&self, line: &str, max_reply: usize) -> Result<TransportOutput, ConsoleError> {
        let (argv, stdin) = command_with_chunk(&self.command, line);
        let mut params = AttachParams::default()
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true);
        if let Some(container) = &self.container {
            params = params.container(container.as_str());
        }
        let mut process = self
            .pods
            .exec(&self.pod, argv, &params)
            .await
            .map_err(|e| ConsoleError::Unreachable {
                message: format!("exec into {}: {e}", self.pod),
            })?;
        let status = process.take_status();
        let (stdout, stderr) = {
            let writer = process.stdin();
            let out = process.stdout();
            let err = process.stderr();
            let (_, stdout, stderr) = tokio::join!(
                feed(writer, stdin),
                read_bounded(out, max_reply),
                read_tail(err)
            );
            (stdout?, stderr)
        };
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        if let Err(e) = process.join().await {
            tracing::debug!(pod = %self.pod, error = %e, "exec stream ended with an error");
        }
        Ok(TransportOutput {
            stdout,
            stderr,
            exit: exec_exit(status),
        })
    }
}

/// The console command run as a local process: what exec does inside the
/// pod, for local use and tests (e.g. the default command with
/// `TARANTOOL_RUN_DIR` set).
#[derive(Debug, Clone)]
pub struct CommandTransport {
    command: Vec<String>,
    env: Vec<(String, String)>,
    current_dir: Option<PathBuf>,
}

impl CommandTransport {
    /// Runs `command` (program and arguments).
    pub fn new(command: Vec<String>) -> Self {
        Self {
            command,
            env: Vec::new(),
            current_dir: None,
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs the command in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }
}

#[async_trait]
impl ConsoleTransport for CommandTransport {
    fn target(&self) -> String {
        format!("command {:?}", self.command)
    }

    async fn run(&self, line: &str, max_reply: usize) -> Result<TransportOutput, ConsoleError> {
        let (argv, stdin) = command_with_chunk(&self.command, line);
        let Some((program, args)) = argv.split_first() else {
            return Err(ConsoleError::Unreachable {
                message: "the console command is empty".into(),
            });
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out exchange drops this future: take the process with it.
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|e| ConsoleError::Unreachable {
            message: format!("cannot run {program}: {e}"),
        })?;
        let writer = child.stdin.take();
        let out = child.stdout.take();
        let err = child.stderr.take();
        let (_, stdout, stderr) = tokio::join!(
            feed(writer, stdin),
            read_bounded(out, max_reply),
            read_tail(err)
        );
        let stdout = stdout?;
        let status = child.wait().await.map_err(|e| ConsoleError::Unreachable {
            message: format!("waiting for {program}: {e}"),
        })?;
        let exit = match status.code() {
            Some(code) => Exit::Code(code),
            None => Exit::Failed(format!("{program} ended without an exit code: {status}")),
        };
        Ok(TransportOutput {
            stdout,
            stderr,
            exit,
        })
    }
}

/// The console's unix socket itself (`console.listen` path, e.g.
/// `/var/run/tarantool/<instance>.control`): for local use and tests.
#[derive(Debug, Clone)]
pub struct SocketTransport {
    path: PathBuf,
}

impl SocketTransport {
    /// Talks to the console listening on `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[async_trait]
impl ConsoleTransport for SocketTransport {
    fn target(&self) -> String {
        format!("socket {}", self.path.display())
    }

    async fn run(&self, line: &str, max_reply: usize) -> Result<TransportOutput, ConsoleError> {
        let unreachable = |what: &str, e: std::io::Error| ConsoleError::Unreachable {
            message: format!("{what} {}: {e}", self.path.display()),
        };
        let mut stream = UnixStream::connect(&self.path)
            .await
            .map_err(|e| unreachable("connecting to", e))?;
        let mut greeting = [0u8; GREETING_LEN];
        stream
            .read_exact(&mut greeting)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => ConsoleError::Protocol {
                    message: "the connection closed before the greeting".into(),
                },
                _ => unreachable("reading the greeting of", e),
            })?;
        protocol::check_greeting(&greeting)?;
        stream
            .write_all(line.as_bytes())
            .await
            .map_err(|e| unreachable("writing to", e))?;
        // The connection stays open after the reply: read until the
        // document ends, not until EOF.
        let mut reply = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| unreachable("reading from", e))?;
            if n == 0 {
                return Err(ConsoleError::Protocol {
                    message: format!(
                        "the connection closed after {} bytes of reply: {:?}",
                        reply.len(),
                        protocol::truncate(&String::from_utf8_lossy(&reply), 200)
                    ),
                });
            }
            reply.extend_from_slice(&chunk[..n]);
            if reply.len() > max_reply {
                return Err(ConsoleError::ReplyTooLarge { limit: max_reply });
            }
            if !protocol::may_become_document(&reply) {
                return Err(ConsoleError::Protocol {
                    message: format!(
                        "reply is not a YAML document: {:?}",
                        protocol::truncate(&String::from_utf8_lossy(&reply), 200)
                    ),
                });
            }
            if protocol::is_complete_document(&reply) {
                break;
            }
        }
        Ok(TransportOutput {
            stdout: reply,
            stderr: String::new(),
            exit: Exit::Code(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_goes_to_stdin_or_in_place_of_the_placeholder() {
        let cmd = vec!["tarantoolctl".to_string(), "connect".into(), "x".into()];
        let (argv, stdin) = command_with_chunk(&cmd, "return 1\n");
        assert_eq!(argv, cmd);
        assert_eq!(stdin.as_deref(), Some("return 1\n"));

        let cmd = vec![
            "sh".to_string(),
            "-c".into(),
            "echo \"$1\"".into(),
            "x".into(),
            "{chunk}".into(),
        ];
        let (argv, stdin) = command_with_chunk(&cmd, "return 1\n");
        assert_eq!(argv[4], "return 1");
        assert_eq!(stdin, None);
    }

    #[test]
    fn exec_status_maps_to_exit() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};
        assert_eq!(
            exec_exit(Some(Status {
                status: Some("Success".into()),
                ..Status::default()
            })),
            Exit::Code(0)
        );
        let failed = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        };
        assert_eq!(exec_exit(Some(failed)), Exit::Code(3));
        assert!(matches!(
            exec_exit(Some(Status {
                status: Some("Failure".into()),
                message: Some("executable file not found".into()),
                ..Status::default()
            })),
            Exit::Failed(m) if m.contains("not found")
        ));
        assert!(matches!(exec_exit(None), Exit::Failed(_)));
    }
}
