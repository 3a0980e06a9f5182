use std::process::ExitCode;

use clap::Parser;
use egress_scout::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Run(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not for log files and collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .init();
    // One TLS crypto provider for the process (the Kubernetes client's), chosen explicitly:
    // builds that link a second provider would otherwise refuse to pick.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("egress-scout: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Scan(args) => cli::scan(args).await,
            Command::Run(args) => cli::run(args).await,
            Command::Check(args) => cli::check(args),
            Command::Audit(args) => cli::audit(args).await,
            Command::Policy(cli::PolicyCommand::Query(args)) => cli::policy_query(args).await,
            Command::Policy(cli::PolicyCommand::Check(args)) => cli::policy_check(args).await,
            Command::Policy(cli::PolicyCommand::Generate(args)) => cli::policy_generate(args).await,
            Command::Report(args) => cli::report(args).await,
        }
    });
    // A source may still block in a read of stdin; nothing it holds is needed any more.
    runtime.shutdown_background();
    result.unwrap_or_else(|e| {
        eprintln!("egress-scout: error: {e:#}");
        ExitCode::FAILURE
    })
}
