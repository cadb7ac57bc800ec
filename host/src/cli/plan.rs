//! `plan`: a dry run of a strategy on a described Role.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tarantool_operator::strategy::simulator::{
    PRINT_COLUMN_BYTES, PRINT_HEAD_STEPS, PRINT_TAIL_STEPS, RoleDescription, RunLimits, Simulator,
    shown_steps,
};

/// `plan` arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A built-in name or a path to a .wasm component.
    #[arg(long)]
    strategy: String,
    /// The Role, as YAML or JSON (see docs/strategies.md for the format).
    #[arg(long)]
    role: PathBuf,
    /// Override or add a strategy param, `key=value`.
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
}

/// Parses `key=value`.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got {s:?}"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// Runs `plan`.
pub fn run(args: PlanArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let registry = super::registry(cache_dir)?;
    let strategy = super::load(&registry, &args.strategy)?;
    let text = std::fs::read_to_string(&args.role)
        .with_context(|| format!("cannot read {}", args.role.display()))?;
    let mut description = RoleDescription::parse(&text)
        .with_context(|| format!("invalid role description {}", args.role.display()))?;
    description.params.extend(args.params);
    let mut sim = Simulator::from_description(&description)?;
    let report = sim.run(strategy.as_ref(), RunLimits::default());

    println!(
        "{:>4}  {:>6}  {:>5}  {:<48}  MESSAGE",
        "STEP", "TIME", "UNAV", "ACTIONS"
    );
    // Bounded: the first and the last steps, each line cut to its column
    // width (messages are cleaned and bounded by the engine already).
    let (head, left_out, tail) =
        shown_steps(report.steps.len(), PRINT_HEAD_STEPS, PRINT_TAIL_STEPS);
    let print = |i: usize| {
        let step = &report.steps[i];
        let mut actions = String::new();
        for action in &step.actions {
            if actions.len() > PRINT_COLUMN_BYTES {
                break;
            }
            if !actions.is_empty() {
                actions.push_str("; ");
            }
            actions.push_str(&action.to_string());
        }
        let actions = if actions.is_empty() {
            "-".to_string()
        } else if actions.len() > PRINT_COLUMN_BYTES {
            let mut cut = PRINT_COLUMN_BYTES;
            while !actions.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}…", &actions[..cut])
        } else {
            actions
        };
        println!(
            "{:>4}  {:>5}s  {:>5}  {:<48}  {}",
            i + 1,
            step.at,
            step.unavailable,
            actions,
            step.message
        );
    };
    head.for_each(print);
    if left_out > 0 {
        println!("   …  {left_out} steps not shown");
    }
    tail.for_each(print);
    let stats = &report.stats;
    println!(
        "\n{} after {}s simulated: {} deletions, {} master switches, at most {} pods unavailable at once",
        report.outcome,
        stats.makespan_secs,
        stats.deletions,
        stats.switches,
        stats.max_unavailable_role
    );
    Ok(if report.outcome.is_completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
