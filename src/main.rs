//! The `cuecast` binary: parses the command line, loads config, runs the app until a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cuecast::app::{self, App};
use cuecast::config::Config;
use tracing_subscriber::EnvFilter;

/// cuecast — live-shopping media server (RTMP in, LL-HLS out).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Config file layered over the built-in default (config/cuecast.toml).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Load and validate the configuration (file + environment), report, and exit.
    CheckConfig {
        /// Config file layered over the built-in default.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let (config_path, serve) = match cli.command {
        Command::Serve { config } => (config, true),
        Command::CheckConfig { config } => (config, false),
    };
    let config = match Config::load(config_path.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("cuecast: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if !serve {
        println!("configuration is valid: {} stream(s)", config.streams.len());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cuecast: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let app = App::start(config).await?;
        app::shutdown_signal().await;
        app.shutdown().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cuecast: {err:#}");
            ExitCode::FAILURE
        }
    }
}
