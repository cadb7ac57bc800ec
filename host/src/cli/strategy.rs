//! `strategy list` and `strategy check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tarantool_operator::strategy::Registry;
use tarantool_operator::strategy::checker::{self, CheckConfig};
use tarantool_operator::strategy::simulator::RandomShape;

/// `strategy ...`
#[derive(Debug, Subcommand)]
pub enum StrategyCommand {
    /// List the built-in strategies and their params.
    List,
    /// Load a strategy (built-in name or .wasm file), verify its world and
    /// version, and drive it in the simulator over generated Roles. Exits 0
    /// only when every run completes with no invariant violation.
    Check(CheckArgs),
}

/// `strategy check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A built-in name (e.g. SwitchMasterUpdate) or a path to a .wasm component.
    strategy: String,
    /// Generated Roles to run.
    #[arg(long, default_value_t = 32)]
    cases: u64,
    /// First seed (a failing seed reproduces with `--seed N --cases 1`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Most replica sets in a generated Role.
    #[arg(long, default_value_t = 50)]
    max_replicasets: u32,
    /// Most pods in a replica set.
    #[arg(long, default_value_t = 5)]
    max_replicas: u32,
    /// Strategy params for every run, `key=value`.
    #[arg(long = "param", value_parser = super::plan::parse_param)]
    params: Vec<(String, String)>,
}

/// Runs a `strategy` subcommand.
pub fn run(cmd: StrategyCommand, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let registry = super::registry(cache_dir)?;
    match cmd {
        StrategyCommand::List => list(&registry),
        StrategyCommand::Check(args) => check(&registry, args),
    }
}

fn list(registry: &Registry) -> anyhow::Result<ExitCode> {
    for name in Registry::builtin_names() {
        let strategy = registry.builtin(name)?;
        let info = strategy.info();
        println!("{} {}", info.name, info.version);
        println!("  {}", info.description);
        for p in &info.params {
            let default = p
                .default
                .as_deref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            println!("  param {}{default}: {}", p.name, p.description);
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn check(registry: &Registry, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let strategy = super::load(registry, &args.strategy)?;
    let info = strategy.info();
    println!(
        "loaded {} {} (world tarantool:strategy@{}, sha256 {})",
        info.name,
        info.version,
        strategy.wit_version(),
        strategy.digest()
    );
    let config = CheckConfig {
        first_seed: args.seed,
        cases: args.cases,
        shape: RandomShape {
            replicasets: 1..=args.max_replicasets.max(1),
            replicas: 1..=args.max_replicas.max(1),
            params: args.params.into_iter().collect(),
            ..RandomShape::default()
        },
        ..CheckConfig::default()
    };
    let report = checker::check(strategy.as_ref(), &config);
    for case in &report.cases {
        let manual = if case.manual_deletions > 0 {
            format!(", {} deleted by hand", case.manual_deletions)
        } else {
            String::new()
        };
        println!(
            "seed {:>4}: {:>2} replica sets, {:>3} pods: {} ({} plans, {} deletions, {} switches{manual}, {}s simulated)",
            case.seed,
            case.replicasets,
            case.pods,
            case.outcome.label(),
            case.plans,
            case.deletions,
            case.switches,
            case.makespan_secs,
        );
    }
    let failures: Vec<_> = report.failures().collect();
    if failures.is_empty() {
        println!(
            "clean: {} of {} runs completed with no violation",
            report.cases.len(),
            report.cases.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for case in &failures {
            println!("FAILED seed {}: {}", case.seed, case.outcome);
        }
        println!("{} of {} runs failed", failures.len(), report.cases.len());
        Ok(ExitCode::FAILURE)
    }
}
