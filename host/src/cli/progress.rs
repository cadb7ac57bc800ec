//! `tarantool-operator progress`: every Role's update as a table, once or
//! redrawn every second.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kube::Client;
use kube::api::{Api, ListParams};
use tarantool_operator::api::Role;
use tarantool_operator::timeline::progress::progress_table;

/// Flags of `progress`.
#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// The Roles' namespace (default: the kubeconfig's).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Redraw every second until Ctrl-C.
    #[arg(long, short = 'w')]
    watch: bool,
}

/// Runs `progress`.
pub fn run(args: ProgressArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(progress(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn progress(args: ProgressArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (KUBECONFIG or in-cluster)")?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let roles: Api<Role> = Api::namespaced(client, &namespace);
    let table = async || -> anyhow::Result<String> {
        let list = roles
            .list(&ListParams::default())
            .await
            .with_context(|| format!("cannot list the Roles of namespace {namespace}"))?;
        Ok(progress_table(&list.items))
    };
    if !args.watch {
        print!("{}", table().await?);
        return Ok(());
    }
    // On a terminal, redraw in place; in a pipe or a file, print a new
    // table only when it changed, so the output stays a readable log.
    let terminal = std::io::stdout().is_terminal();
    let mut last = String::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let now = match table().await {
            Ok(t) => t,
            // A failed look is shown, not fatal: the apiserver may be
            // restarting while the update runs.
            Err(e) => format!("error: {e:#}\n"),
        };
        let mut out = std::io::stdout().lock();
        if terminal {
            write!(out, "\x1b[H\x1b[2J{now}")?;
        } else if now != last {
            if !last.is_empty() {
                writeln!(out)?;
            }
            write!(out, "{now}")?;
        }
        out.flush()?;
        last = now;
    }
}
