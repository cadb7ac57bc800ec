//! `plan`: a dry run of a strategy, on a described Role (`--role FILE`) or
//! on a live one (`-n NS ROLE`, optionally with a changed image or params).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kube::runtime::events::Reporter;
use tarantool_operator::console::ConsoleOptions;
use tarantool_operator::controller::metrics::Metrics;
use tarantool_operator::controller::role::rollout::preview::{self, Overrides};
use tarantool_operator::controller::{Context, Settings};
use tarantool_operator::strategy::simulator::{
    PRINT_COLUMN_BYTES, PRINT_HEAD_STEPS, PRINT_TAIL_STEPS, RoleDescription, RunLimits, RunReport,
    Simulator, shown_steps,
};
use tarantool_operator::topology::cartridge::ExecConnector;

/// `plan` arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A live Role's name: read it, its pods and Cartridge's view, and
    /// simulate its own strategy (needs `-n`; reads only).
    #[arg(value_name = "ROLE", conflicts_with_all = ["role", "strategy"], requires = "namespace")]
    name: Option<String>,
    /// The live Role's namespace.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Live mode: preview the rollout this image would start (every
    /// container of the template).
    #[arg(long, requires = "name")]
    image: Option<String>,
    /// Described mode: a built-in name or a path to a .wasm component.
    #[arg(long, required_unless_present = "name")]
    strategy: Option<String>,
    /// Described mode: the Role, as YAML or JSON (see docs/strategies.md
    /// for the format).
    #[arg(long, required_unless_present = "name")]
    role: Option<PathBuf>,
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
    if let (Some(name), Some(namespace)) = (args.name.clone(), args.namespace.clone()) {
        return live(args, registry, &namespace, &name);
    }
    let (Some(strategy), Some(role)) = (args.strategy.as_deref(), args.role.as_ref()) else {
        anyhow::bail!("give either -n NAMESPACE ROLE, or --strategy and --role");
    };
    let strategy = super::load(&registry, strategy)?;
    let text =
        std::fs::read_to_string(role).with_context(|| format!("cannot read {}", role.display()))?;
    let mut description = RoleDescription::parse(&text)
        .with_context(|| format!("invalid role description {}", role.display()))?;
    description.params.extend(args.params);
    let mut sim = Simulator::from_description(&description)?;
    let report = sim.run(strategy.as_ref(), RunLimits::default());
    Ok(print(&report))
}

/// The live mode: the operator's own reads, console path and strategy.
fn live(
    args: PlanArgs,
    registry: tarantool_operator::strategy::Registry,
    namespace: &str,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .context("cannot start the async runtime")?;
    let (description, report) = runtime.block_on(async {
        let config = kube::Config::infer()
            .await
            .context("cannot configure a Kubernetes client (KUBECONFIG or in-cluster)")?;
        let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
        let connector = Arc::new(ExecConnector::new(
            client.clone(),
            ConsoleOptions {
                timeout: Duration::from_secs(10),
                ..ConsoleOptions::default()
            },
        ));
        let ctx = Context::new(
            client,
            connector,
            Arc::new(Metrics::unregistered()),
            Settings::default(),
            Arc::new(registry),
            Reporter {
                controller: "tarantool-operator-plan".into(),
                instance: None,
            },
        );
        let overrides = Overrides {
            image: args.image.clone(),
            params: args.params.clone(),
        };
        preview::live(&ctx, namespace, name, &overrides)
            .await
            .with_context(|| format!("cannot preview Role {namespace}/{name}"))
    })?;
    let pods: u32 = description.replicasets.iter().map(|r| r.replicas).sum();
    let outdated: usize = description
        .replicasets
        .iter()
        .map(|r| r.replicas as usize - r.updated.len())
        .sum();
    println!(
        "Role {namespace}/{name}: {} replica sets, {pods} pods, {outdated} to update (restarts estimated at {}s, terminations at {}s)\n",
        description.replicasets.len(),
        preview::RESTART_SECONDS,
        preview::TERMINATE_SECONDS
    );
    Ok(print(&report))
}

/// Prints the steps and the summary; fails unless the run completed.
fn print(report: &RunReport) -> ExitCode {
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
        let mut actions = preview::actions_text(step);
        if actions.len() > PRINT_COLUMN_BYTES {
            let mut cut = PRINT_COLUMN_BYTES;
            while !actions.is_char_boundary(cut) {
                cut -= 1;
            }
            actions.truncate(cut);
            actions.push('…');
        }
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
    if report.outcome.is_completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
