//! `eslock`: the operator CLI of eslock. It shows, sets up and force-releases
//! the locks in an Elasticsearch or OpenSearch cluster, watches them change,
//! and runs commands under a lock (flock(1) for a cluster).
//!
//! ```text
//! eslock list --id-prefix reindex/         # every live lock, as a table (--json for scripts)
//! eslock --kibana get knowledge_base_reindex
//! eslock release reindex/logs-2024         # force-release (asks first on a terminal)
//! eslock setup                             # create the index and templates
//! eslock watch --interval 2s               # the table, redrawn until Ctrl-C
//! eslock run --ttl 1m nightly -- ./report.sh
//! eslock completions bash
//! ```
//!
//! Connection options (also from `ELASTICSEARCH_*` variables): `--url`
//! (repeatable or comma-separated: round-robin), `--api-key`, `--username`
//! with `--password`, `--ca-cert`. Exit statuses: 0 done, 1 nothing there,
//! 2 usage error, 3 failure, 4 `run`: held elsewhere, 5 `run`: lease lost;
//! otherwise `run` exits with the command's status.
//!
//! Modules: `args` (clap definitions and help texts), `connect` (the client),
//! `output` (tables and JSON), `run` and `watch` (the two long-running commands).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{CommandFactory, Parser};
use eslock::{ElasticsearchStore, LockManager};

mod args;
mod connect;
mod output;
mod run;
mod watch;

use args::{Cli, Command, IndexChoice};

/// Exit statuses (the others, for `run`, are in `run`).
const NOT_FOUND: u8 = 1;
const USAGE_ERROR: u8 = 2;
const FAILURE: u8 = 3;

/// Why a command stopped: its exit status and message.
#[derive(Debug)]
pub struct Fail {
    status: u8,
    message: String,
}

impl Fail {
    fn usage(message: impl Into<String>) -> Fail {
        Fail { status: USAGE_ERROR, message: message.into() }
    }

    fn failed(message: impl Into<String>) -> Fail {
        Fail { status: FAILURE, message: message.into() }
    }
}

impl From<eslock::Error> for Fail {
    fn from(err: eslock::Error) -> Fail {
        Fail::failed(err.to_string())
    }
}

fn manager(cli: &Cli) -> Result<LockManager, Fail> {
    let store = ElasticsearchStore::builder(connect::client(&cli.connection)?);
    let store = match &cli.index {
        IndexChoice { kibana: true, .. } => store.kibana_compatible(),
        IndexChoice { index: Some(name), .. } => store.index_name(name),
        IndexChoice { prefix: Some(prefix), .. } => store.index_prefix(prefix),
        IndexChoice { .. } => store,
    };
    Ok(LockManager::builder().store(store.build()).build())
}

/// On a terminal, shows the holder and asks; elsewhere (scripts) proceeds.
fn confirm_release(lock: &eslock::LockInfo) -> bool {
    if !std::io::stdin().is_terminal() {
        return true;
    }
    eprintln!("{}", output::table(std::slice::from_ref(lock), SystemTime::now()));
    eprint!("force-release lock \"{}\"? its holder may still be working [y/N] ", lock.lock_id);
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

async fn run(cli: Cli) -> Result<u8, Fail> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "eslock", &mut std::io::stdout());
        return Ok(0);
    }
    let manager = manager(&cli)?;
    match &cli.command {
        Command::List(filter) => {
            let mut locks = manager.list().await?;
            locks.retain(|lock| filter.keeps(lock.lock_id.as_str()));
            if cli.json {
                println!("{}", serde_json::Value::Array(locks.iter().map(output::to_json).collect()));
            } else if locks.is_empty() {
                println!("no locks are held in {}", manager.index().unwrap_or_default());
            } else {
                println!("{}", output::table(&locks, SystemTime::now()));
            }
            Ok(0)
        }
        Command::Get { lock_id } => match manager.get(lock_id).await? {
            Some(lock) if cli.json => {
                println!("{}", output::to_json(&lock));
                Ok(0)
            }
            Some(lock) => {
                println!("{}", output::table(&[lock], SystemTime::now()));
                Ok(0)
            }
            None => {
                eprintln!("lock \"{lock_id}\" is not held");
                Ok(NOT_FOUND)
            }
        },
        Command::Release { lock_id, yes } => {
            if !yes && std::io::stdin().is_terminal() {
                match manager.get(lock_id).await? {
                    None => {
                        eprintln!("lock \"{lock_id}\" was not held");
                        return Ok(NOT_FOUND);
                    }
                    Some(lock) if !confirm_release(&lock) => {
                        eprintln!("lock \"{lock_id}\" was not released");
                        return Ok(NOT_FOUND);
                    }
                    Some(_) => {}
                }
            }
            if manager.force_release(lock_id).await? {
                println!("released lock \"{lock_id}\"");
                Ok(0)
            } else {
                eprintln!("lock \"{lock_id}\" was not held");
                Ok(NOT_FOUND)
            }
        }
        Command::Setup => {
            manager.setup().await?;
            println!("lock index {} is ready", manager.index().unwrap_or_default());
            Ok(0)
        }
        Command::Watch(args) => watch::watch(&manager, args).await,
        Command::Run(args) => run::run(&manager, args).await,
        Command::Completions { .. } => unreachable!("handled above"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
    match run(cli).await {
        Ok(status) => ExitCode::from(status),
        Err(fail) => {
            eprintln!("eslock: {}", fail.message);
            ExitCode::from(fail.status)
        }
    }
}
