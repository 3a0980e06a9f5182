//! `egress-scout report`: the inventory (scanned here, or a snapshot) as one self-contained
//! HTML page, with the policy check's verdicts and the audit's findings when cluster objects
//! are given.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::Exit;
use super::policy::ObservedArgs;
use crate::policy::query::Resolver;
use crate::policy::{Evaluator, check};
use crate::report::Page;

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub observed: ObservedArgs,
    /// Add the audit's findings of the cluster objects (needs --cluster or --live).
    #[arg(long)]
    pub audit: bool,
    /// The HTML file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

pub async fn report(args: ReportArgs) -> Result<Exit> {
    let judge = args
        .observed
        .scan
        .classify
        .settings()?
        .classify
        .checked_judge()?;
    let observed = args.observed.read_observed(false).await?;
    if args.audit && observed.cluster.is_none() {
        bail!("--audit reads the cluster objects: add --cluster FILE|DIR or --live");
    }
    let checked = observed.cluster.as_ref().map(|cluster| {
        let resolver = Resolver::new(Evaluator::new(cluster));
        check::check(&resolver, observed.destinations.iter().cloned())
    });
    let mut page = Page::new(&observed.destinations, checked.as_ref());
    page.stats = observed.totals;
    if args.audit
        && let Some(cluster) = &observed.cluster
    {
        let rules = crate::audit::Rules {
            judge,
            internal_registries: Vec::new(),
            namespaces: cluster.namespace_names(),
        };
        page.findings = crate::audit::audit(cluster, &[], &rules).findings;
    }
    crate::atomic_write::write_atomically(&args.output, page.html().as_bytes())
        .await
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "egress-scout: wrote {} ({} destinations, {} edges)",
        args.output.display(),
        page.destinations.len(),
        page.edges.len()
    );
    Ok(Exit::SUCCESS)
}
