//! Command line: `scan` (one-shot over files), `run` (a pipeline from a config file),
//! `check` (validate a config file), `audit` (the egress cluster objects declare) and
//! `policy` (what the policies allow of it).

mod policy;
mod report;

pub use policy::{
    PolicyCommand, check as policy_check, generate as policy_generate, query as policy_query,
};
pub use report::{ReportArgs, report};

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::{
    FileSourceConfig, PcapSourceConfig, Settings, SourceConfig, StartAt, StdinSourceConfig,
    readable,
};
use crate::output;
use crate::parse::Format;
use crate::pipeline;

/// Discovers the destinations outside the cluster that Kubernetes workloads connect to.
#[derive(Debug, Parser)]
#[command(name = "egress-scout", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read log files (or stdin) to their end and print the inventory of external destinations.
    Scan(ScanArgs),
    /// Run a pipeline from a config file until its sources end or SIGINT/SIGTERM.
    Run(RunArgs),
    /// Validate a pipeline config file and print each problem with its key path.
    Check(CheckArgs),
    /// Report the egress the cluster's configuration declares or allows: from the API, or
    /// from `kubectl get -o json|yaml` files.
    Audit(AuditArgs),
    /// What the cluster's policies allow: per connection (`query`), or for every observed
    /// edge (`check`).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Write the inventory as one self-contained HTML page: the egress map, tables, new
    /// destinations over time, with policy verdicts and audit findings when given the cluster.
    Report(ReportArgs),
}

/// How destinations are judged internal, for commands that take it from the command line.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// A pod or service CIDR of the cluster (repeatable); replaces classify.cluster_cidrs.
    #[arg(long = "cluster-cidr", value_name = "CIDR")]
    pub cluster_cidrs: Vec<IpNet>,
    /// The cluster DNS domain; replaces classify.cluster_domain.
    #[arg(long, value_name = "D")]
    pub cluster_domain: Option<String>,
    /// A resolv.conf search domain (repeatable); replaces classify.search_domains.
    #[arg(long = "search-domain", value_name = "D")]
    pub search_domains: Vec<String>,
    /// Take classify and limits settings from this pipeline file (its sources are ignored).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ClassifyArgs {
    /// The settings of `--config` (or the defaults) with the command line's overrides.
    pub(crate) fn settings(&self) -> Result<Settings> {
        let mut settings = Settings::load(self.config.as_deref())?;
        let c = &mut settings.classify;
        if !self.cluster_cidrs.is_empty() {
            c.cluster_cidrs = self.cluster_cidrs.iter().map(IpNet::to_string).collect();
        }
        if let Some(d) = &self.cluster_domain {
            c.cluster_domain.clone_from(d);
        }
        if !self.search_domains.is_empty() {
            c.search_domains.clone_from(&self.search_domains);
        }
        Ok(settings)
    }
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub inputs: ScanInputs,
    /// Output: default table on a terminal, else json; `mermaid` and `dot` draw the map.
    #[arg(long, value_enum)]
    pub output: Option<ScanOutput>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanOutput {
    Table,
    Json,
    /// A Mermaid flowchart (GitHub renders it in Markdown).
    Mermaid,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
}

/// What a scan reads, and how it judges and names what it finds.
#[derive(Debug, Args)]
pub struct ScanInputs {
    /// Input format; `auto` detects it per file, and CRI/docker wrapping per line.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    #[command(flatten)]
    pub classify: ClassifyArgs,
    /// `kubectl get pods,replicasets,jobs -A -o json` output: name the pods and workloads
    /// behind client IPs; replaces enrich.pods_file.
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,
    /// Files to read; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipeline file (TOML or YAML).
    #[arg(long, value_name = "FILE", default_value = "pipelines/quickstart.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// `kubectl get ... -o json|yaml` files or directories (`-` is stdin); none: the live
    /// API (kubeconfig, else the in-cluster service account).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Kubeconfig file for the live API (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Only this namespace (cluster-wide policies still count).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Also scan the last N lines of every container's log for external URLs (live only).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100")]
    pub logs: Option<i64>,
    /// A registry (or registry/path prefix) images may come from without a finding
    /// (repeatable), e.g. `registry.corp.example` or `ghcr.io/my-org`.
    #[arg(long = "internal-registry", value_name = "REGISTRY")]
    pub internal_registries: Vec<String>,
    /// Output: default table on a terminal, else json.
    #[arg(long, value_enum)]
    pub output: Option<AuditOutput>,
    /// Exit 2 when a finding of this class exists (repeatable): for CI gates.
    #[arg(long = "fail-on", value_enum, value_name = "CLASS")]
    pub fail_on: Vec<FailOn>,
    #[command(flatten)]
    pub classify: ClassifyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditOutput {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Workloads no egress policy selects.
    Unrestricted,
    /// Any external destination declared or allowed.
    External,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Pipeline file (TOML or YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// The process exit code of a command that ran.
pub type Exit = std::process::ExitCode;

pub async fn scan(args: ScanArgs) -> Result<Exit> {
    let report = scan_inputs(args.inputs, None).await?;
    let inventory = &report.inventory;
    let totals = report.totals();
    // Written as it is built: the document of a large inventory is never whole in memory.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match for_terminal(args.output, ScanOutput::Table, ScanOutput::Json) {
        ScanOutput::Json => {
            let doc = output::InventoryDoc::new(inventory.destinations(), totals);
            serde_json::to_writer_pretty(&mut out, &doc)?;
            out.write_all(b"\n")?;
        }
        format @ (ScanOutput::Mermaid | ScanOutput::Dot) => {
            let destinations: Vec<_> = inventory.destinations().collect();
            let graph =
                crate::report::graph::Graph::of(&crate::report::Page::new(&destinations, None));
            let text = match format {
                ScanOutput::Mermaid => graph.mermaid(),
                _ => graph.dot(),
            };
            out.write_all(text.as_bytes())?;
        }
        ScanOutput::Table => {
            output::write_table(&mut out, || inventory.destinations())?;
            let summary = output::summary(inventory.len(), inventory.edge_count(), &totals);
            writeln!(out, "\n{summary}")?;
        }
    }
    out.flush()?;
    Ok(Exit::SUCCESS)
}

/// Runs a scan to the inputs' end; `pods` names the sources when `--pods` does not.
async fn scan_inputs(
    args: ScanInputs,
    pods: Option<crate::enrich::SharedPods>,
) -> Result<pipeline::Report> {
    let mut settings = args.classify.settings()?;
    if args.pods.is_some() {
        settings.enrich.pods_file = args.pods;
    }
    let files = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files
    };
    settings.sources = Vec::with_capacity(files.len());
    for path in files {
        if path.as_os_str() == "-" {
            settings
                .sources
                .push(SourceConfig::Stdin(StdinSourceConfig {
                    format: args.format,
                    name: None,
                }));
            continue;
        }
        if let Err(why) = readable(&path) {
            bail!("cannot read {}: {why}", path.display());
        }
        // Captures are recognised by their first bytes, whatever --format says.
        if starts_like_capture(&path) {
            let pcap: PcapSourceConfig =
                serde_json::from_value(serde_json::json!({ "path": path }))?;
            settings.sources.push(SourceConfig::Pcap(pcap));
            continue;
        }
        settings.sources.push(SourceConfig::File(FileSourceConfig {
            path,
            format: args.format,
            follow: false,
            start_at: StartAt::Beginning,
            poll_interval_ms: 250,
            name: None,
        }));
    }
    let judge = settings.judge()?;
    let shutdown = shutdown_on_signal();
    let pods = match settings.pod_table(&shutdown).await? {
        Some(table) => Some(table),
        None => pods,
    };
    Ok(pipeline::run(&settings, judge, pods, &[], shutdown).await?)
}

/// The output asked for; else `table` on a terminal, `other` elsewhere.
fn for_terminal<T>(asked: Option<T>, table: T, other: T) -> T {
    asked.unwrap_or(if std::io::stdout().is_terminal() {
        table
    } else {
        other
    })
}

fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

pub async fn run(args: RunArgs) -> Result<Exit> {
    let settings = Settings::load(Some(&args.config))?;
    let judge = settings.judge()?;
    let shutdown = shutdown_on_signal();
    let pods = settings.pod_table(&shutdown).await?;
    let sinks = settings.effective_sinks();
    tracing::info!(
        config = %args.config.display(),
        sources = settings.sources.len(),
        sinks = sinks.len(),
        "pipeline starting"
    );
    let report = pipeline::run(&settings, judge, pods, &sinks, shutdown).await?;
    for source in &report.sources {
        let reasons = source.reasons();
        if !reasons.is_empty() {
            tracing::info!(source = %source.name, ?reasons, "lines not counted, by reason");
        }
    }
    for sink in &report.sinks {
        let t = sink.totals();
        tracing::info!(
            sink = %sink.name,
            received = t.lines,
            sent = t.records - t.internal - t.dropped,
            dropped = t.dropped,
            reasons = ?sink.reasons(),
            "sink finished"
        );
    }
    let t = report.totals();
    tracing::info!(
        destinations = report.inventory.len(),
        edges = report.inventory.edge_count(),
        folded = t.folded,
        lines = t.lines,
        records = t.records,
        internal = t.internal,
        skipped = t.skipped,
        malformed = t.malformed,
        dropped = t.dropped,
        "pipeline finished"
    );
    Ok(Exit::SUCCESS)
}

pub fn check(args: CheckArgs) -> Result<Exit> {
    let problems = match Settings::load(Some(&args.file)) {
        Ok(settings) => settings.problems(),
        Err(e) => {
            println!("{e}");
            return Ok(Exit::FAILURE);
        }
    };
    if problems.is_empty() {
        println!("{}: ok", args.file.display());
        return Ok(Exit::SUCCESS);
    }
    for p in &problems {
        println!("{}: {p}", args.file.display());
    }
    Ok(Exit::FAILURE)
}

pub async fn audit(args: AuditArgs) -> Result<Exit> {
    use crate::audit::{self, Kind, Rules, render};
    let settings = args.classify.settings()?;
    let judge = settings.classify.checked_judge()?;
    if !args.files.is_empty() && args.logs.is_some() {
        bail!("--logs reads pod logs through the API: leave out the files to audit live");
    }
    let mut logs = Vec::new();
    let cluster = if args.files.is_empty() {
        let client =
            crate::kubernetes::client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        let mut cluster = read_live(&client, args.namespace).await?;
        if let Some(lines) = args.logs {
            logs = audit::logs::fetch(&client, &mut cluster, lines).await;
        }
        cluster
    } else {
        read_files(&args.files, args.namespace.as_deref())?
    };
    let rules = Rules {
        judge,
        internal_registries: args.internal_registries,
        namespaces: cluster.namespace_names(),
    };
    let report = audit::audit(&cluster, &logs, &rules);
    let text = match for_terminal(args.output, AuditOutput::Table, AuditOutput::Json) {
        AuditOutput::Json => serde_json::to_string_pretty(&report)? + "\n",
        AuditOutput::Table => render::table(&report),
        AuditOutput::Markdown => render::markdown(&report),
    };
    print(&text)?;
    let tripped: Vec<&str> = args
        .fail_on
        .iter()
        .filter(|class| {
            report.findings.iter().any(|f| match class {
                FailOn::Unrestricted => f.kind == Kind::UnrestrictedPod,
                FailOn::External => f.destination.is_some(),
            })
        })
        .map(|class| match class {
            FailOn::Unrestricted => "unrestricted",
            FailOn::External => "external",
        })
        .collect();
    if tripped.is_empty() {
        return Ok(Exit::SUCCESS);
    }
    eprintln!(
        "egress-scout: --fail-on {}: findings present",
        tripped.join(", ")
    );
    Ok(Exit::from(2))
}

/// The cluster from the API (one namespace's objects, or all).
async fn read_live(client: &kube::Client, namespace: Option<String>) -> Result<Cluster> {
    let scope = crate::cluster::live::Scope { namespace };
    crate::cluster::live::fetch(client.clone(), &scope)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the cluster: {e}"))
}

/// The cluster from manifests (one namespace's objects, or all).
fn read_files(files: &[PathBuf], namespace: Option<&str>) -> Result<Cluster> {
    let mut cluster = crate::cluster::load::from_paths(files)?;
    if let Some(ns) = namespace {
        cluster.retain_namespace(ns);
    }
    Ok(cluster)
}

/// A token cancelled by the first SIGINT or SIGTERM; a second signal exits at once.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            tracing::error!("cannot install the SIGTERM handler");
            return;
        };
        let mut signals = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            signals += 1;
            if signals > 1 {
                tracing::warn!("second signal: exiting without draining");
                std::process::exit(130);
            }
            tracing::info!("signal received: draining and flushing (send again to exit at once)");
            cancel.cancel();
        }
    });
    token
}

/// Whether the file opens with a pcap or pcapng magic number.
fn starts_like_capture(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| crate::capture::is_capture(&head))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
