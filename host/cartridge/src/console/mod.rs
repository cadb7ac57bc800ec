//! A client for Tarantool's admin console: the operator's only way into an
//! instance (no network path, no Cartridge credentials; see docs/console.md).
//!
//! - `protocol`: how a Lua chunk is encoded (one base64 line) and how a
//!   reply (a YAML document) is read.
//! - `transport`: how the line reaches the console: [`ExecTransport`]
//!   (pod exec, what the operator uses), [`CommandTransport`] (the same
//!   command as a local process) and [`SocketTransport`] (the control socket
//!   itself).
//! - [`Console`]: runs a chunk through a transport within a timeout and a
//!   reply-size bound, and decodes the JSON the chunk returns.
//! - [`access`]: which command runs in a pod (the operator's profiles, a
//!   Cluster's own command only when the operator allows it).
//! - [`reduce`]: what of a console's output may reach a message (Cartridge's
//!   error class and text, a known client failure; never raw output).

pub mod access;
pub(crate) mod protocol;
pub mod reduce;
mod transport;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::Reason;

pub use transport::{
    CHUNK_PLACEHOLDER, CommandTransport, ConsoleTransport, ExecTransport, Exit, SocketTransport,
    TransportOutput,
};

/// Default bound on one whole exchange (connect, run, read the reply).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on the size of one reply.
pub(crate) const DEFAULT_MAX_REPLY: usize = 4 * 1024 * 1024;

/// Why a console call failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The console could not be reached: connect or exec failed, the command
    /// is missing or exited without a Lua error.
    #[error("console unreachable: {message}")]
    Unreachable {
        /// What the transport said.
        message: String,
    },
    /// The whole exchange took longer than the timeout.
    #[error("console did not answer within {after:?}")]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// The chunk raised a Lua error (Cartridge's `nil, err` is raised too).
    #[error("Lua error: {message}")]
    Lua {
        /// The error message.
        message: String,
    },
    /// The reply was larger than the bound.
    #[error("console reply larger than {limit} bytes")]
    ReplyTooLarge {
        /// The bound.
        limit: usize,
    },
    /// The reply was not what the console protocol or the chunk promises.
    #[error("unexpected console reply: {message}")]
    Protocol {
        /// What was wrong with it.
        message: String,
    },
}

impl ConsoleError {
    /// A label for logs (a topology call reports its own reason).
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unreachable { .. } => Reason::ConsoleUnreachable,
            Self::Timeout { .. } => Reason::ConsoleTimeout,
            Self::Lua { .. } => Reason::LuaError,
            Self::ReplyTooLarge { .. } => Reason::ConsoleReplyTooLarge,
            Self::Protocol { .. } => Reason::ConsoleProtocol,
        }
    }
}

/// Limits of one console call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleOptions {
    /// Bound on the whole exchange; past it the exchange is dropped (the
    /// local process killed, the exec stream or socket closed).
    pub timeout: Duration,
    /// Bound on the reply (stdout) in bytes.
    pub max_reply: usize,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            max_reply: DEFAULT_MAX_REPLY,
        }
    }
}

/// Runs Lua chunks on one instance's console.
#[derive(Debug, Clone)]
pub struct Console {
    transport: Arc<dyn ConsoleTransport>,
    options: ConsoleOptions,
}

impl Console {
    /// A console reached through `transport`.
    pub fn new(transport: Arc<dyn ConsoleTransport>, options: ConsoleOptions) -> Self {
        Self { transport, options }
    }

    /// The limits in use.
    pub fn options(&self) -> ConsoleOptions {
        self.options
    }

    /// What the transport reaches (pod or socket), for messages.
    pub fn target(&self) -> String {
        self.transport.target()
    }

    /// Runs `code` (any Lua chunk; `args` arrive as its `...` after a JSON
    /// round trip) and returns the values it returned.
    pub async fn eval(
        &self,
        name: &str,
        code: &str,
        args: Option<&serde_json::Value>,
    ) -> Result<Vec<serde_yaml::Value>, ConsoleError> {
        let args =
            args.map(serde_json::to_string)
                .transpose()
                .map_err(|e| ConsoleError::Protocol {
                    message: format!("cannot encode the arguments of {name}: {e}"),
                })?;
        let line = protocol::encode_chunk(name, code, args.as_deref());
        let started = Instant::now();
        let result = tokio::time::timeout(
            self.options.timeout,
            self.transport.run(&line, self.options.max_reply),
        )
        .await;
        let result = match result {
            Err(_) => Err(ConsoleError::Timeout {
                after: self.options.timeout,
            }),
            Ok(Err(e)) => Err(e),
            Ok(Ok(output)) => interpret(output),
        };
        match &result {
            Ok(_) => tracing::debug!(
                target = %self.transport.target(),
                chunk = name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "console call done"
            ),
            Err(e) => tracing::debug!(
                target = %self.transport.target(),
                chunk = name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                reason = e.reason().as_str(),
                error = %e,
                "console call failed"
            ),
        }
        result
    }

    /// Runs a chunk that returns ONE JSON string (`return
    /// json.encode(projection)`) and decodes it as `T`.
    pub async fn call<A: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        name: &str,
        code: &str,
        args: &A,
    ) -> Result<T, ConsoleError> {
        let args = serde_json::to_value(args).map_err(|e| ConsoleError::Protocol {
            message: format!("cannot encode the arguments of {name}: {e}"),
        })?;
        let values = self.eval(name, code, Some(&args)).await?;
        let json = protocol::single_string(values)?;
        // serde_json's error names a line and column, never the text.
        serde_json::from_str(&json).map_err(|e| ConsoleError::Protocol {
            message: format!(
                "{name} returned JSON that does not fit ({} bytes): {e}",
                json.len()
            ),
        })
    }
}

/// Turns what a transport brought back into values or a typed error. What
/// the command printed reaches an error only through [`reduce`].
pub(crate) fn interpret(output: TransportOutput) -> Result<Vec<serde_yaml::Value>, ConsoleError> {
    match output.exit {
        Exit::Code(0) => protocol::parse_reply(&output.stdout),
        Exit::Code(code) => {
            if let Some(message) = protocol::tarantoolctl_error(&output.stderr) {
                return Err(ConsoleError::Lua {
                    message: reduce::lua_error(&message),
                });
            }
            if let Err(ConsoleError::Lua { message }) = protocol::parse_reply(&output.stdout) {
                return Err(ConsoleError::Lua {
                    message: reduce::lua_error(&message),
                });
            }
            let said = if output.stderr.trim().is_empty() {
                String::from_utf8_lossy(&output.stdout).into_owned()
            } else {
                output.stderr
            };
            Err(ConsoleError::Unreachable {
                message: format!(
                    "the console command exited with code {code}: {}",
                    reduce::command_failure(&said)
                ),
            })
        }
        // The apiserver's or the transport's own words (exec refused, no
        // exit status), not the command's output: bounded only.
        Exit::Failed(message) => Err(ConsoleError::Unreachable {
            message: crate::api::text::bounded(&message, reduce::LINE_MAX),
        }),
    }
}
