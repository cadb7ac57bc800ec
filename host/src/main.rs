//! The `tarantool-operator` binary: the operator itself and the tools for
//! strategy authors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod cli;

/// Kubernetes operator for Tarantool Cartridge with wasm update strategies.
#[derive(Debug, Parser)]
#[command(name = "tarantool-operator", version, about)]
struct Args {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `tarantool_operator=debug`.
    #[arg(long, global = true, default_value = "warn", env = "LOG_LEVEL")]
    log_level: String,
    /// Where compiled strategies are cached between runs.
    #[arg(long, global = true, env = "STRATEGY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and check update strategies.
    #[command(subcommand)]
    Strategy(cli::strategy::StrategyCommand),
    /// Print, as a table, the steps a strategy would take on a described Role,
    /// simulated to the end.
    Plan(cli::plan::PlanArgs),
    /// Print the Cluster and Role CRDs as YAML (or write/check `crds/`).
    Crds(cli::crds::CrdsArgs),
    /// Run the operator: the Cluster and Role controllers.
    Run(cli::run::RunArgs),
    /// Draw an update run as SVG (from a recording or a namespace's Events),
    /// or record one (`timeline record`).
    Timeline(cli::timeline::TimelineArgs),
    /// Show every Role's update progress as a table (`--watch` to follow).
    Progress(cli::progress::ProgressArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_format, &args.log_level);
    let result = match args.command {
        Command::Strategy(cmd) => cli::strategy::run(cmd, args.cache_dir),
        Command::Plan(plan) => cli::plan::run(plan, args.cache_dir),
        Command::Crds(crds) => cli::crds::run(crds),
        Command::Run(run) => cli::run::run(run, args.cache_dir),
        Command::Timeline(timeline) => cli::timeline::run(timeline),
        Command::Progress(progress) => cli::progress::run(progress),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
