//! `tarantool-operator crds`: prints the CRDs, writes them into a directory,
//! or checks that a directory holds the current ones.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tarantool_operator::api::crds;

/// Arguments of `crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write `cluster.yaml` and `role.yaml` into this directory instead of
    /// printing them.
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    write: Option<PathBuf>,
    /// Exit with 1 when the files in this directory differ from the
    /// generated ones.
    #[arg(long, value_name = "DIR")]
    check: Option<PathBuf>,
}

/// Runs `crds`.
pub fn run(args: CrdsArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = args.write {
        let written = crds::write(&dir)
            .with_context(|| format!("cannot write the CRDs into {}", dir.display()))?;
        for path in written {
            eprintln!("wrote {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = args.check {
        return match crds::check(&dir) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e @ crds::CrdError::Stale { .. }) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        };
    }
    print!("{}", crds::yaml_stream()?);
    Ok(ExitCode::SUCCESS)
}
