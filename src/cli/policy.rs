//! `policy query`, `policy check` and `policy generate`: the evaluator at the command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use clap::{Args, Subcommand};

use super::{Exit, ScanInputs, for_terminal, read_files, read_live, scan_inputs};
use crate::cluster::Cluster;
use crate::enrich::PodTable;
use crate::policy::check::{self, Status};
use crate::policy::query::{Query, Resolver, readable};
use crate::policy::{Evaluator, render};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Answer connections (JSON lines, or one from the flags): allowed or denied, by which
    /// rule, on the egress and the ingress side.
    Query(QueryArgs),
    /// Judge every observed edge against the policies: allowed, denied, unrestricted; and
    /// list declared allowances never used.
    Check(CheckArgs),
    /// Least-privilege egress policies from what was observed.
    Generate(GenerateArgs),
}

/// Where the cluster's objects come from.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Read the cluster from the API (kubeconfig, else the in-cluster service account).
    #[arg(long)]
    pub live: bool,
    /// Kubeconfig file for --live (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for --live.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// The cluster from `files` (`live` among them means the API), or from the API.
    async fn read(&self, files: &[PathBuf]) -> Result<Cluster> {
        let live = self.live || files.iter().any(|f| f.as_os_str() == "live");
        match (live, files.iter().any(|f| f.as_os_str() != "live")) {
            (true, true) => {
                bail!("the cluster comes from the API (--live) or from files, not both")
            }
            (true, false) => {
                let client =
                    crate::kubernetes::client(self.kubeconfig.as_deref(), self.context.as_deref())
                        .await?;
                read_live(&client, None).await
            }
            (false, true) => read_files(files, None),
            (false, false) => bail!("no cluster objects: name files or directories, or --live"),
        }
    }
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// `kubectl get -o json|yaml` files or directories (`-` is stdin).
    #[arg(value_name = "CLUSTER")]
    pub cluster: Vec<PathBuf>,
    #[command(flatten)]
    pub source: ClusterArgs,
    /// Questions as JSON lines (`-` is stdin): {"from": "NS/NAME", "to": "IP"|"NS/NAME",
    /// "port": 443, "protocol": "TCP", "name": "api.example.com"}.
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
    /// One question instead: the source pod or workload, `NS/NAME`.
    #[arg(long, value_name = "NS/NAME", conflicts_with = "queries")]
    pub from: Option<String>,
    /// The destination: an address or `NS/NAME`.
    #[arg(long, value_name = "IP|NS/NAME", requires = "from")]
    pub to: Option<String>,
    #[arg(long, requires = "from")]
    pub port: Option<u16>,
    /// TCP (default), UDP or SCTP.
    #[arg(long, requires = "from")]
    pub protocol: Option<String>,
    /// The DNS name asked for, for FQDN and host rules.
    #[arg(long, requires = "from")]
    pub name: Option<String>,
    /// Print the one answer as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn query(args: QueryArgs) -> Result<Exit> {
    let stdin_twice = args.cluster.iter().any(|f| f.as_os_str() == "-")
        && args
            .queries
            .as_deref()
            .is_some_and(|q| q.as_os_str() == "-");
    if stdin_twice {
        bail!("--queries - and a cluster file - cannot both read stdin");
    }
    let cluster = args.source.read(&args.cluster).await?;
    let resolver = Resolver::new(Evaluator::new(&cluster));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if let Some(from) = args.from {
        let Some(to) = args.to else {
            bail!("--from needs --to");
        };
        let query = Query {
            from,
            to,
            port: args.port,
            protocol: args.protocol,
            name: args.name,
        };
        let answer = resolver.answer(query);
        if args.json {
            serde_json::to_writer(&mut out, &answer)?;
            writeln!(out)?;
        } else {
            out.write_all(readable(&answer).as_bytes())?;
        }
        out.flush()?;
        return Ok(match (&answer.verdict, &answer.error) {
            (Some(v), _) if v.allowed => Exit::SUCCESS,
            (_, Some(_)) => Exit::FAILURE,
            _ => Exit::from(2),
        });
    }
    let input: Box<dyn BufRead> = match args.queries.as_deref() {
        None => bail!("give --queries FILE (or -), or one question with --from and --to"),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?,
        )),
    };
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Query>(&line) {
            Ok(query) => serde_json::to_writer(&mut out, &resolver.answer(query))?,
            Err(e) => serde_json::to_writer(
                &mut out,
                &serde_json::json!({"line": n + 1, "error": format!("not a query: {e}")}),
            )?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Exit::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckOutput {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// An observed edge the policies deny.
    Denied,
    /// A declared allowance no observed edge used.
    Unused,
    /// An observed edge of a workload no policy restricts.
    Unrestricted,
}

/// What was observed, and the cluster to judge it against.
#[derive(Debug, Args)]
pub struct ObservedArgs {
    /// The inventory: a file sink's snapshot or a `scan --output json` document (else the
    /// scan inputs are scanned).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub scan: ScanInputs,
    /// `kubectl get -o json|yaml` files or directories (repeatable; `live` for the API).
    #[arg(long = "cluster", value_name = "FILE|DIR")]
    pub cluster: Vec<PathBuf>,
    #[command(flatten)]
    pub source: ClusterArgs,
}

/// The observed inventory, and the scan's counters when it was scanned here.
pub(super) struct Observed {
    pub cluster: Option<Cluster>,
    pub destinations: Vec<crate::inventory::Destination>,
    pub totals: Option<crate::telemetry::Totals>,
}

impl ObservedArgs {
    /// The cluster, and the inventory: `--inventory`'s file, else a scan of the inputs whose
    /// sources the cluster's own pods name when `--pods` does not.
    async fn read(self) -> Result<(Cluster, Vec<crate::inventory::Destination>)> {
        let observed = self.read_observed(true).await?;
        let cluster = observed.cluster.expect("a cluster was required");
        Ok((cluster, observed.destinations))
    }

    /// As [`Self::read`]; without cluster objects named, none unless `required`.
    pub(super) async fn read_observed(self, required: bool) -> Result<Observed> {
        let named = self.source.live || !self.cluster.is_empty();
        let cluster = match named || required {
            true => Some(self.source.read(&self.cluster).await?),
            false => None,
        };
        if let Some(path) = &self.inventory {
            if !self.scan.files.is_empty() {
                bail!("--inventory or scan inputs, not both");
            }
            if !path.is_file() {
                bail!("cannot read {}: no such file", path.display());
            }
            let destinations = crate::snapshot::load(path)?;
            return Ok(Observed {
                cluster,
                destinations,
                totals: None,
            });
        }
        let pods = cluster.as_ref().map(|c| {
            let table = PodTable::from_pods(c.pods.iter());
            Arc::new(ArcSwap::from_pointee(table))
        });
        let report = scan_inputs(self.scan, pods).await?;
        Ok(Observed {
            cluster,
            destinations: report.inventory.destinations().collect(),
            totals: Some(report.totals()),
        })
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub observed: ObservedArgs,
    /// Output: default table on a terminal, else json.
    #[arg(long, value_enum)]
    pub output: Option<CheckOutput>,
    /// Exit 2 when a row of this class exists (repeatable): for CI gates.
    #[arg(long = "fail-on", value_enum, value_name = "CLASS")]
    pub fail_on: Vec<FailOn>,
}

pub async fn check(args: CheckArgs) -> Result<Exit> {
    let (cluster, destinations) = args.observed.read().await?;
    let resolver = Resolver::new(Evaluator::new(&cluster));
    let report = check::check(&resolver, destinations.into_iter());
    let text = match for_terminal(args.output, CheckOutput::Table, CheckOutput::Json) {
        CheckOutput::Json => serde_json::to_string_pretty(&report)? + "\n",
        CheckOutput::Table => render::table(&report),
        CheckOutput::Markdown => render::markdown(&report),
    };
    super::print(&text)?;
    let tripped: Vec<&str> = args
        .fail_on
        .iter()
        .filter(|class| match class {
            FailOn::Denied => report.totals.denied > 0,
            FailOn::Unrestricted => report.totals.unrestricted > 0,
            FailOn::Unused => !report.unused.is_empty(),
        })
        .map(|class| match class {
            FailOn::Denied => Status::Denied.as_str(),
            FailOn::Unrestricted => Status::Unrestricted.as_str(),
            FailOn::Unused => "unused",
        })
        .collect();
    if tripped.is_empty() {
        return Ok(Exit::SUCCESS);
    }
    eprintln!("egress-scout: --fail-on {}: present", tripped.join(", "));
    Ok(Exit::from(2))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateKind {
    Networkpolicy,
    Cilium,
    Istio,
    Adminnetworkpolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InClusterArg {
    /// Every pod of every namespace stays reachable.
    Allow,
    /// Only what was observed (the inventory holds destinations outside: DNS only).
    Observed,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub observed: ObservedArgs,
    /// The kinds to generate (repeatable; default networkpolicy).
    #[arg(long = "kind", value_enum)]
    pub kinds: Vec<GenerateKind>,
    /// A directory for one YAML file per kind, or `-` (default) for one stream on stdout.
    #[arg(long, value_name = "DIR|-", default_value = "-")]
    pub out: PathBuf,
    /// In-cluster egress: allow all (default) or only what was observed.
    #[arg(long, value_enum, default_value_t = InClusterArg::Allow)]
    pub in_cluster: InClusterArg,
    /// NetworkPolicy: group IPv4 addresses into /N blocks ...
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(8..=31))]
    pub aggregate_ipv4: Option<u8>,
    /// ... when at least this many share one (default 2).
    #[arg(long, value_name = "COUNT", default_value_t = 2)]
    pub aggregate_min: usize,
    /// Cilium: matchPattern for names sharing a parent domain (Cilium's one-label `*`).
    #[arg(long)]
    pub fqdn_patterns: bool,
    /// Cilium version of the cluster: 1.19 or later allows `**.` patterns.
    #[arg(long, value_name = "X.Y")]
    pub cilium_version: Option<String>,
    /// Istio: a Sidecar per workload instead of per namespace.
    #[arg(long)]
    pub per_workload: bool,
    /// AdminNetworkPolicy priority.
    #[arg(long, default_value_t = 50)]
    pub priority: i32,
    /// Print what the generated set adds, replaces and removes among the cluster's policies
    /// instead of the YAML.
    #[arg(long)]
    pub diff: bool,
}

/// Whether `X.Y` is Cilium 1.19 or later.
fn double_star(version: Option<&str>) -> Result<bool> {
    let Some(v) = version else { return Ok(false) };
    let mut parts = v.trim_start_matches('v').split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor) >= (1, 19)),
        _ => bail!("--cilium-version {v:?}: give it as MAJOR.MINOR, e.g. 1.19"),
    }
}

pub async fn generate(args: GenerateArgs) -> Result<Exit> {
    use crate::policy::generate::{self, InCluster, Kind, Options};
    let classify = args.observed.scan.classify.settings()?.classify;
    let (cluster, destinations) = args.observed.read().await?;
    let mut kinds: Vec<Kind> = args
        .kinds
        .iter()
        .map(|k| match k {
            GenerateKind::Networkpolicy => Kind::NetworkPolicy,
            GenerateKind::Cilium => Kind::Cilium,
            GenerateKind::Istio => Kind::Istio,
            GenerateKind::Adminnetworkpolicy => Kind::AdminNetworkPolicy,
        })
        .collect();
    if kinds.is_empty() {
        kinds.push(Kind::NetworkPolicy);
    }
    kinds.sort();
    kinds.dedup();
    let opts = Options {
        kinds: kinds.clone(),
        in_cluster: match args.in_cluster {
            InClusterArg::Allow => InCluster::Allow,
            InClusterArg::Observed => InCluster::Observed,
        },
        aggregate_ipv4: args.aggregate_ipv4,
        aggregate_min: args.aggregate_min.max(1),
        fqdn_patterns: args.fqdn_patterns,
        cilium_double_star: double_star(args.cilium_version.as_deref())?,
        per_workload_sidecar: args.per_workload,
        priority: args.priority,
        cluster_domain: classify.cluster_domain,
        cluster_cidrs: classify.cluster_cidrs,
    };
    let resolver = Resolver::new(Evaluator::new(&cluster));
    let generated = generate::generate(&resolver, &destinations, &opts);
    if args.diff {
        super::print(&generate::diff(&cluster, &generated))?;
        return Ok(Exit::SUCCESS);
    }
    for note in &generated.notes {
        eprintln!("egress-scout: {note}");
    }
    if args.out.as_os_str() == "-" {
        super::print(&generated.yaml(&kinds))?;
        return Ok(Exit::SUCCESS);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for kind in kinds {
        let path = args.out.join(kind.file_name());
        crate::atomic_write::write_atomically(&path, generated.yaml(&[kind]).as_bytes())
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Exit::SUCCESS)
}
