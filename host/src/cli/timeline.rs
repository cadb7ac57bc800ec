//! `tarantool-operator timeline`: draws an update run as SVG (or HTML),
//! from a recording or from a live namespace's Events, and records runs.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kube::Client;
use tarantool_operator::timeline::record::Recorder;
use tarantool_operator::timeline::render::{RenderOptions, render_html, render_svg};
use tarantool_operator::timeline::{Record, from_events, read_jsonl};

/// Flags of `timeline`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TimelineArgs {
    #[command(subcommand)]
    command: Option<TimelineCommand>,
    #[command(flatten)]
    render: RenderArgs,
}

#[derive(Debug, Subcommand)]
enum TimelineCommand {
    /// Record a run into JSON lines: pods and the operator's Events of one
    /// namespace, until Ctrl-C or --duration.
    Record(RecordArgs),
}

/// Flags of drawing a picture.
#[derive(Debug, Args)]
struct RenderArgs {
    /// A recorded run (JSON lines from `timeline record`).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "namespace",
        required_unless_present = "namespace"
    )]
    from: Option<PathBuf>,
    /// Build the run from this namespace's Events and pods instead.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Where to write the picture: SVG, or an HTML page when the name ends
    /// in `.html`.
    #[arg(long, value_name = "FILE", default_value = "timeline.svg")]
    out: PathBuf,
    /// The picture's title (default: "Update of <roles>").
    #[arg(long)]
    title: Option<String>,
}

/// Flags of `timeline record`.
#[derive(Debug, Args)]
struct RecordArgs {
    /// The namespace to watch.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Where to append records (JSON lines).
    #[arg(long, value_name = "FILE", default_value = "run.jsonl")]
    out: PathBuf,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
}

/// Runs `timeline`.
pub fn run(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(TimelineCommand::Record(record)) => run_record(record),
        None => run_render(args.render),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn client() -> anyhow::Result<Client> {
    Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (KUBECONFIG or in-cluster)")
}

fn run_render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let records: Vec<Record> = match (&args.from, &args.namespace) {
        (Some(path), _) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            read_jsonl(BufReader::new(file))
                .with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, Some(namespace)) => runtime()?.block_on(async {
            let client = client().await?;
            from_events::collect(client, namespace)
                .await
                .with_context(|| {
                    format!("cannot read the Events and pods of namespace {namespace}")
                })
        })?,
        (None, None) => anyhow::bail!("give --from FILE or --namespace NS"),
    };
    if records.is_empty() {
        eprintln!("warning: no records; the picture will be empty");
    }
    let options = RenderOptions { title: args.title };
    let picture = if is_html(&args.out) {
        render_html(&records, &options)
    } else {
        render_svg(&records, &options)
    };
    std::fs::write(&args.out, picture)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn is_html(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

fn run_record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    // Append, so that a recorder restarted during a run adds to its file.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .with_context(|| format!("cannot open {}", args.out.display()))?;
    let runtime = runtime()?;
    let written = runtime.block_on(async {
        let client = client().await?;
        let duration = args.duration.map(Duration::from_secs);
        let stop = async move {
            match duration {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let namespace = args.namespace.clone();
        tokio::spawn(async move {
            if ready_rx.await.is_ok() {
                eprintln!("recording namespace {namespace}; Ctrl-C to stop");
            }
        });
        Recorder::new(client, &args.namespace)
            .on_ready(ready_tx)
            .run(BufWriter::new(file), stop)
            .await
            .with_context(|| format!("recording into {}", args.out.display()))
    })?;
    eprintln!("{written} records");
    println!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
