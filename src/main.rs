//! The `teamgate` binary: parses the command line and calls the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use teamgate::embedded::{EmbeddedVendor, EmbeddedVendors, StartFuture};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::{Identity, Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// mimalloc: a request allocates and frees many small objects (parsed JSON, headers, log
/// lines); BENCHMARKS.md has what it saves against the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "teamgate",
    version,
    about = "One canonical Team API in front of many vendor team APIs"
)]
struct Cli {
    /// Log format: `json` (one JSON object a line), `human`, or `auto`: human on a terminal,
    /// JSON otherwise (a file, a pipe, a container log).
    #[arg(
        long,
        global = true,
        env = "TEAMGATE_LOG_FORMAT",
        default_value = "auto",
        value_enum
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Auto,
    Json,
    Human,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the canonical API (the default).
    Serve {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Override `listen` from the config.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check the config and every mapping; print every problem; exit 1 on any.
    Check {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Also print the configuration in effect (file, environment overrides, defaults),
        /// secrets masked.
        #[arg(long)]
        print: bool,
    },
    /// Plan moving teams and memberships from one backend to another; `--apply` carries the
    /// plan out. Exit 0: planned, or all applied; 1: an action failed (run again to resume);
    /// 2: an error; 3: applied, but the plan left things behind (its notes say what).
    Migrate {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Carry the plan out (without it: a dry run that only prints the plan).
        #[arg(long)]
        apply: bool,
        /// Also remove target members and teams the source does not have.
        #[arg(long)]
        prune: bool,
        /// Only teams whose name matches this glob (`*`, `?`; case-insensitive).
        #[arg(long, value_name = "GLOB")]
        teams: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Compare two backends' teams and memberships (fields both hold, members by email and
    /// role). Exit 0: equal; 1: different; 2: an error.
    Diff {
        a: String,
        b: String,
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Only teams whose name matches this glob (`*`, `?`; case-insensitive).
        #[arg(long, value_name = "GLOB")]
        teams: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run one vendor simulator standalone.
    Sim {
        /// The simulator kind (one of `teamgate_sim::KINDS`).
        vendor: String,
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// The only credential the simulator accepts.
        #[arg(
            long,
            env = "TEAMGATE_SIM_CREDENTIAL",
            default_value = "sim-credential"
        )]
        credential: String,
        /// Inject a fault from the start: `NAME[=VALUE][,count=N][,method=M]`, e.g.
        /// `latency=2000`, `status=503`, `echo=500`, `rate-limited=7`, `rate-limited` (no
        /// Retry-After), `stall`, `reset`, `reset-after-read,count=1,method=POST`,
        /// `truncated-json`, `malformed-json`.
        #[arg(long)]
        fault: Option<String>,
        /// Serve the admin routes: `GET|POST /_sim/fault`, `POST /_sim/switch`.
        #[arg(long)]
        fault_admin: bool,
        /// Turn a vendor switch on (repeatable), e.g. `errors_in_200` (errors inside HTTP 200).
        #[arg(long = "switch", value_name = "NAME")]
        switches: Vec<String>,
    },
}

/// The simulator crate as the library's embedded vendors: what `simulator = "<kind>"` in the
/// config starts (the demo). The library itself never imports the simulators.
struct Simulators;

impl EmbeddedVendors for Simulators {
    fn kinds(&self) -> &[&'static str] {
        teamgate_sim::KINDS
    }

    fn start<'a>(&'a self, kind: &'a str, credential: &'a str) -> StartFuture<'a> {
        Box::pin(async move {
            let vendor = teamgate_sim::new_vendor(kind, credential)
                .ok_or_else(|| anyhow::anyhow!("unknown simulator {kind}"))?;
            let handle = teamgate_sim::spawn_local(vendor).await?;
            Ok(EmbeddedVendor {
                base_url: handle.base_url(),
                guard: Box::new(handle),
            })
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve {
        config: PathBuf::from("config.toml"),
        listen: None,
    });
    match command {
        Command::Check { config, print } => {
            let _logs = init_logs(cli.log_format, Identity::new());
            check(&config, print)
        }
        Command::Serve { config, listen } => serve_main(cli.log_format, config, listen),
        Command::Migrate {
            from,
            to,
            config,
            apply,
            prune,
            teams,
            output,
        } => {
            let _logs = init_logs(cli.log_format, Identity::new());
            let options = teamgate::migrate::MigrateOptions {
                apply,
                prune,
                teams,
            };
            runtime().block_on(migrate(config, from, to, options, output))
        }
        Command::Diff {
            a,
            b,
            config,
            teams,
            output,
        } => {
            let _logs = init_logs(cli.log_format, Identity::new());
            runtime().block_on(diff(config, a, b, teams, output))
        }
        Command::Sim {
            vendor,
            listen,
            credential,
            fault,
            fault_admin,
            switches,
        } => {
            let _logs = init_logs(cli.log_format, Identity::new());
            let faults = SimFaults {
                fault,
                admin: fault_admin,
                switches,
            };
            runtime().block_on(sim(vendor, listen, credential, faults))
        }
    }
}

/// `teamgate serve`, with the OpenTelemetry exporter when the build has the `otlp` feature
/// and a collector is configured: its layer joins the logs, and what it still holds is sent
/// before the process exits.
#[cfg(feature = "otlp")]
fn serve_main(
    format: LogFormat,
    config: PathBuf,
    listen: Option<std::net::SocketAddr>,
) -> ExitCode {
    let runtime = runtime();
    // The exporter's batch task is spawned on the runtime.
    let started = runtime.block_on(async { teamgate::otlp::start() });
    let (exporter, failure) = match started {
        Ok(exporter) => (exporter, None),
        Err(e) => (None, Some(e)),
    };
    let _logs = init_logs(format, exporter.as_ref().map(|e| e.layer()));
    if let Some(e) = failure {
        tracing::warn!(error = %e, "OpenTelemetry export not started");
    }
    if exporter.is_some() {
        tracing::info!("Exporting spans over OTLP/HTTP");
        if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            if protocol != "http/protobuf" {
                tracing::warn!(%protocol, "Only OTLP http/protobuf is built in; using it");
            }
        }
    }
    let code = runtime.block_on(serve(config, listen));
    // From this thread, not a worker: the batch task, on the workers, sends the rest.
    if let Some(exporter) = exporter {
        if let Err(e) = exporter.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry export did not finish cleanly");
        }
    }
    code
}

#[cfg(not(feature = "otlp"))]
fn serve_main(
    format: LogFormat,
    config: PathBuf,
    listen: Option<std::net::SocketAddr>,
) -> ExitCode {
    let _logs = init_logs(format, Identity::new());
    if [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
    {
        tracing::warn!(
            "An OTLP endpoint is set, but this build has no OpenTelemetry export \
             (build with --features otlp); no spans are exported"
        );
    }
    runtime().block_on(serve(config, listen))
}

/// `teamgate check`: every problem of the config and its mappings, or ok (and with `print`,
/// the configuration in effect). A closed stdout (`| head`) ends the output, not the process.
fn check(config: &std::path::Path, print: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match teamgate::config::check(config, teamgate_sim::KINDS) {
        Ok(checked) => {
            if print {
                let _ = write!(out, "{}", checked.effective_toml());
            }
            let files: std::collections::BTreeSet<_> =
                checked.mappings.values().map(|m| m.file.clone()).collect();
            let _ = writeln!(
                out,
                "{}: ok ({} backends, {} mapping files)",
                config.display(),
                checked.config.backends.len(),
                files.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                let _ = writeln!(out, "{e}");
            }
            let _ = writeln!(out, "{} problem(s) found", errors.len());
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr. The level comes from `TEAMGATE_LOG`, else `RUST_LOG`, else `info`; it
/// filters `exporter` (the OpenTelemetry layer, or nothing) too. JSON lines go through a
/// non-blocking writer (`teamgate::logs`): keep the returned guard until the process ends, so
/// that what it still holds is written.
#[must_use]
fn init_logs<L>(format: LogFormat, exporter: L) -> Option<WorkerGuard>
where
    L: Layer<Layered<EnvFilter, Registry>> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("TEAMGATE_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (logs, guard) = if json {
        // One object a line: the event's fields at the top, the request span's fields
        // (request id, trace id, operation, backend) under `span`.
        let (writer, guard) = teamgate::logs::non_blocking();
        (teamgate::logs::JsonLines::new(writer).boxed(), Some(guard))
    } else {
        let human = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal());
        (human.boxed(), None)
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(exporter)
        .with(logs)
        .init();
    guard
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn serve(config: PathBuf, listen: Option<std::net::SocketAddr>) -> ExitCode {
    let checked = match teamgate::config::check(&config, teamgate_sim::KINDS) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "refusing to start: {} problem(s) in the configuration",
                errors.len()
            );
            return ExitCode::from(1);
        }
    };
    let addr = listen.unwrap_or(checked.config.listen);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let app = match teamgate::App::build_with(checked, &Simulators).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("teamgate failed to start: {e:#}");
            return ExitCode::from(1);
        }
    };
    spawn_reload_on_sighup(app.reloader(config));
    tracing::info!(%addr, "teamgate listening");
    app.serve(listener, shutdown_signal()).await;
    ExitCode::SUCCESS
}

/// The app of a configuration, for `migrate` and `diff`; `None` (reported) when it does not
/// check or build.
async fn build_app(config: &std::path::Path) -> Option<teamgate::App> {
    let checked = match teamgate::config::check(config, teamgate_sim::KINDS) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return None;
        }
    };
    match teamgate::App::build_with(checked, &Simulators).await {
        Ok(app) => Some(app),
        Err(e) => {
            eprintln!("teamgate failed to start: {e:#}");
            None
        }
    }
}

/// `teamgate migrate`; the work is in `teamgate::migrate`.
async fn migrate(
    config: PathBuf,
    from: String,
    to: String,
    options: teamgate::migrate::MigrateOptions,
    output: Output,
) -> ExitCode {
    use teamgate::migrate::report::EXIT_ERROR;
    let Some(app) = build_app(&config).await else {
        return ExitCode::from(EXIT_ERROR);
    };
    // A progress line on a terminal, for the apply.
    let terminal = std::io::stderr().is_terminal() && output == Output::Text;
    let mut progress = |done: usize, total: usize, what: &str| {
        if terminal {
            eprint!("\r\x1b[2K[{done}/{total}] {what}");
        }
    };
    let result = teamgate::migrate::migrate(&app, &from, &to, &options, &mut progress).await;
    if terminal && options.apply {
        eprint!("\r\x1b[2K");
    }
    match result {
        Ok(report) => {
            let text = match output {
                Output::Text => report.to_text(),
                Output::Json => format!("{:#}\n", report.to_json()),
            };
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("migrate: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `teamgate diff`; the work is in `teamgate::migrate`.
async fn diff(
    config: PathBuf,
    a: String,
    b: String,
    teams: Option<String>,
    output: Output,
) -> ExitCode {
    use teamgate::migrate::report::EXIT_ERROR;
    let Some(app) = build_app(&config).await else {
        return ExitCode::from(EXIT_ERROR);
    };
    match teamgate::migrate::compare(&app, &a, &b, teams.as_deref()).await {
        Ok(diff) => {
            let text = match output {
                Output::Text => diff.to_text(),
                Output::Json => format!("{:#}\n", diff.to_json()),
            };
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::from(diff.exit_code())
        }
        Err(e) => {
            eprintln!("diff: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `SIGHUP` reloads the mapping files; a reload that does not check keeps the old ones.
fn spawn_reload_on_sighup(reloader: teamgate::Reloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            if let Err(errors) = reloader.reload() {
                for e in &errors {
                    tracing::error!(problem = %e, "Reload refused; the old mappings stay");
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = reloader;
}

/// `teamgate sim`'s fault injection options.
struct SimFaults {
    fault: Option<String>,
    admin: bool,
    switches: Vec<String>,
}

async fn sim(
    vendor: String,
    listen: std::net::SocketAddr,
    credential: String,
    faults: SimFaults,
) -> ExitCode {
    let Some(sim) = teamgate_sim::new_vendor(&vendor, &credential) else {
        eprintln!(
            "unknown simulator {vendor:?} (known: {})",
            teamgate_sim::KINDS.join(", ")
        );
        return ExitCode::from(2);
    };
    let plan = match faults
        .fault
        .as_deref()
        .map(teamgate_sim::FaultPlan::parse_spec)
    {
        None => None,
        Some(Ok(plan)) => plan,
        Some(Err(e)) => {
            eprintln!("--fault: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let options = teamgate_sim::SimOptions {
        admin: faults.admin,
    };
    let handle = match teamgate_sim::spawn_with(sim, listener, options) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot start the simulator: {e}");
            return ExitCode::from(1);
        }
    };
    for name in &faults.switches {
        if !handle.set_switch(name, true) {
            eprintln!("--switch: simulator {vendor:?} has no switch {name:?}");
            return ExitCode::from(2);
        }
    }
    let fault = teamgate_sim::FaultPlan::to_json(plan.as_ref()).to_string();
    handle.set_fault_plan(plan);
    tracing::info!(%listen, %vendor, %fault, admin = faults.admin, "Simulator listening");
    shutdown_signal().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
