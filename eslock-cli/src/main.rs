//! `eslock`: see, set up and force-release the locks in a cluster.
//!
//! ```text
//! eslock list
//! eslock --kibana get knowledge_base_reindex
//! eslock release reindex/logs-2024
//! ```

use std::process::ExitCode;
use std::time::SystemTime;

use eslock::LockManager;

mod args;
mod output;

use args::{Args, Command, Index, USAGE};

const DEFAULT_URL: &str = "http://127.0.0.1:9200";

/// Exit statuses: 0 done, 1 nothing there, 2 usage, 3 failure.
const NOT_FOUND: u8 = 1;
const USAGE_ERROR: u8 = 2;
const FAILURE: u8 = 3;

fn manager(args: &Args) -> Result<LockManager, String> {
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("ELASTICSEARCH_URL").ok().filter(|url| !url.is_empty()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let client = eslock::store::elasticsearch::client(&url).map_err(|err| err.to_string())?;
    let builder = LockManager::builder().elasticsearch(client);
    Ok(match &args.index {
        Index::Default => builder,
        Index::Named(name) => builder.index_name(name),
        Index::Prefix(prefix) => builder.index_prefix(prefix),
        Index::Kibana => builder.kibana_compatible(),
    }
    .build())
}

async fn run(args: Args) -> Result<u8, String> {
    if args.command == Command::Help {
        println!("{USAGE}");
        return Ok(0);
    }
    let manager = manager(&args)?;
    let failed = |err: eslock::Error| err.to_string();
    match &args.command {
        Command::List => {
            let locks = manager.list().await.map_err(failed)?;
            if args.json {
                println!("{}", serde_json::Value::Array(locks.iter().map(output::to_json).collect()));
            } else if locks.is_empty() {
                println!("no locks are held in {}", manager.index().unwrap_or_default());
            } else {
                println!("{}", output::table(&locks, SystemTime::now()));
            }
            Ok(0)
        }
        Command::Get(lock_id) => match manager.get(lock_id).await.map_err(failed)? {
            Some(lock) if args.json => {
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
        Command::Release(lock_id) => {
            if manager.force_release(lock_id).await.map_err(failed)? {
                println!("released lock \"{lock_id}\"");
                Ok(0)
            } else {
                eprintln!("lock \"{lock_id}\" was not held");
                Ok(NOT_FOUND)
            }
        }
        Command::Setup => {
            manager.setup().await.map_err(failed)?;
            println!("lock index {} is ready", manager.index().unwrap_or_default());
            Ok(0)
        }
        Command::Help => unreachable!("handled above"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("eslock: {usage}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match run(args).await {
        Ok(status) => ExitCode::from(status),
        Err(message) => {
            eprintln!("eslock: {message}");
            ExitCode::from(FAILURE)
        }
    }
}
