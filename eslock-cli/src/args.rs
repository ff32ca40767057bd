//! Command-line arguments (clap derive): the connection, the lock index, and
//! one subcommand. Every option also works after the subcommand.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const EXIT_STATUS: &str = "\
Exit status:
  0  done
  1  nothing there: the lock is not held (get, release), or release was declined
  2  usage error
  3  failure: the cluster could not be reached or refused the request
  4  run: the lock is held elsewhere
  5  run: the lease was lost while the command ran (the command was sent SIGTERM),
     or the lock was found gone when the command ended
  run otherwise exits with the command's status (128+N when signal N ended it,
  127 when the command was not found, 126 when it could not be started).

Environment:
  ELASTICSEARCH_URL, ELASTICSEARCH_API_KEY, ELASTICSEARCH_USERNAME,
  ELASTICSEARCH_PASSWORD and ELASTICSEARCH_CA_CERT stand for the options of the
  same names; an option given on the command line wins.";

/// See, set up and force-release eslock's locks, or run a command under one.
#[derive(Parser, Debug)]
#[command(
    name = "eslock",
    version,
    about = "See, set up and force-release eslock's locks, or run a command under one",
    long_about = "\
See, set up and force-release the locks that eslock keeps in an Elasticsearch or
OpenSearch cluster, or run a command while holding one (flock(1) for a cluster).

Examples:
  eslock list
  eslock --url https://es.internal:9200 --api-key \"$KEY\" list --json
  eslock --kibana get knowledge_base_reindex
  eslock release reindex/logs-2024
  eslock run --ttl 1m nightly-report -- ./report.sh --full",
    after_long_help = EXIT_STATUS,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub connection: Connection,

    #[command(flatten)]
    pub index: IndexChoice,

    /// Print JSON instead of a table (list, get)
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the cluster is and how to log in. Secrets never show in `Debug`,
/// in `--help` (env values hidden), or in error messages.
#[derive(Args, Debug)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Connection {
    /// Cluster node URL; repeat it or separate URLs with commas to spread
    /// requests round-robin over several nodes [default: http://127.0.0.1:9200]
    #[arg(long = "url", value_name = "URL", env = "ELASTICSEARCH_URL", value_delimiter = ',', global = true)]
    pub urls: Vec<String>,

    /// API key: the base64 "encoded" form, or ID:KEY
    #[arg(long, value_name = "KEY", env = "ELASTICSEARCH_API_KEY", hide_env_values = true, global = true)]
    #[arg(conflicts_with_all = ["username", "password"])]
    pub api_key: Option<Secret>,

    /// User name for basic authentication (asks for the password on a terminal
    /// when none is given)
    #[arg(long, value_name = "USER", env = "ELASTICSEARCH_USERNAME", global = true)]
    pub username: Option<String>,

    /// Password for --username; `--password` alone asks for it without echo
    /// (or reads the first line of standard input when it is not a terminal)
    #[arg(long, value_name = "PASSWORD", env = "ELASTICSEARCH_PASSWORD", hide_env_values = true, global = true)]
    #[arg(num_args = 0..=1, require_equals = true, requires = "username")]
    pub password: Option<Option<Secret>>,

    /// PEM (or DER) file with the certificate of a private CA to trust
    #[arg(long, value_name = "FILE", env = "ELASTICSEARCH_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// Which lock index: eslock's default, a named one, a prefixed one, or Kibana's.
#[derive(Args, Debug)]
#[command(next_help_heading = "Lock index")]
pub(crate) struct IndexChoice {
    /// Lock index alias [default: .eslock-locks]
    #[arg(long, value_name = "NAME", global = true, conflicts_with_all = ["prefix", "kibana"])]
    pub index: Option<String>,

    /// Use the lock index <PREFIX>-locks
    #[arg(long, value_name = "PREFIX", global = true, conflicts_with = "kibana")]
    pub prefix: Option<String>,

    /// Use Kibana's lock index (.kibana_locks), shared with Kibana nodes
    #[arg(long, global = true)]
    pub kibana: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Show every live lock
    #[command(long_about = "\
Show every live lock: its id, fencing token, how long it has been held, when it
expires unless renewed, and the metadata its holder stored with it. A fencing
token of \"-\" means the holder wrote none (a Kibana node).

Examples:
  eslock list
  eslock list --id-prefix reindex/
  eslock list --json | jq -r '.[].lock_id'")]
    List(Filter),

    /// Show one lock (exit status 1 when it is not held)
    #[command(long_about = "\
Show one lock, as a table or with --json as an object with lock_id,
fencing_token, created_at, expires_at and metadata. Exit status 1 when the lock
is not held (absent, released or expired).

Examples:
  eslock get reindex/logs-2024
  eslock --json get reindex/logs-2024")]
    Get {
        /// The lock id
        lock_id: String,
    },

    /// Force-release a lock, whoever holds it (exit status 1 when none)
    #[command(long_about = "\
Force-release a lock, whoever holds it. Its holder's lease is lost at its next
renewal, and the next holder gets a higher fencing token. On a terminal it shows
the holder and asks first, unless --yes is given; when standard input is not a
terminal (scripts) it does not ask. Exit status 1 when the lock was not held or
the answer was no.

Examples:
  eslock release reindex/logs-2024
  eslock release --yes reindex/logs-2024")]
    Release {
        /// The lock id
        lock_id: String,
        /// Do not ask for confirmation
        #[arg(short, long)]
        yes: bool,
    },

    /// Create the lock index and its templates (idempotent)
    #[command(long_about = "\
Create the lock index and its templates. Idempotent, and safe to run from many
places at once; every other command also does it when needed. An existing index
with wrong mappings is repaired only when it holds no live lock.

Examples:
  eslock setup
  eslock --prefix billing setup")]
    Setup,

    /// Show the live locks, refreshed until Ctrl-C
    #[command(long_about = "\
Show the live locks as in `list`, refreshed every --interval until Ctrl-C. Each
refresh marks the locks acquired since the one before with `+` and lists those
released (or expired) since with `-`. On a terminal the table is redrawn in
place; otherwise each refresh is printed after the last.

Examples:
  eslock watch
  eslock watch --interval 5s --id-prefix reindex/
  eslock watch --iterations 3 > snapshots.txt")]
    Watch(WatchArgs),

    /// Run a command while holding a lock (flock(1) for a cluster)
    #[command(long_about = "\
Acquire a lock, run a command while holding it, then release it: flock(1) for a
cluster. The lease is renewed while the command runs, and stores the host, the
process id and the command as metadata for `eslock list`.

The exit status is the command's. When the lock is held elsewhere (after --wait,
if given), the command does not run and the status is 4. When the lease is lost
while the command runs (force-released, or unreachable cluster past the lease's
trust deadline), the command is sent SIGTERM (SIGKILL after --grace) and the
status is 5; also when the release after the command finds the lock gone
(force-released before a renewal noticed). SIGINT, SIGTERM and SIGHUP sent to
eslock are passed on to the command; the lock is released once it has exited.

Examples:
  eslock run migrations -- ./migrate.sh
  eslock run --ttl 2m --wait 10m reindex/logs-2024 -- reindex --source logs-2024
  eslock run nightly-report -- sh -c 'pg_dump app | gzip > /backup/app.gz'")]
    Run(RunArgs),

    /// Print a shell completion script
    #[command(long_about = "\
Print a completion script for a shell to standard output.

Examples:
  eslock completions bash > /etc/bash_completion.d/eslock
  eslock completions zsh > \"${fpath[1]}/_eslock\"
  eslock completions fish > ~/.config/fish/completions/eslock.fish")]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub(crate) struct Filter {
    /// Only locks whose id starts with this (the index prefix is --prefix)
    #[arg(long, value_name = "PREFIX")]
    pub id_prefix: Option<String>,
}

impl Filter {
    pub(crate) fn keeps(&self, lock_id: &str) -> bool {
        self.id_prefix.as_deref().is_none_or(|prefix| lock_id.starts_with(prefix))
    }
}

#[derive(Args, Debug)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    pub filter: Filter,

    /// Time between two refreshes (e.g. 500ms, 5s)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub interval: Duration,

    /// Stop after this many refreshes
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,

    /// Show the locks once and stop (--iterations 1)
    #[arg(long, conflicts_with = "iterations")]
    pub once: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Lease TTL; renewed about every TTL/3 while the command runs
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub ttl: Duration,

    /// Wait up to this long for a held lock instead of exiting with status 4
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub wait: Option<Duration>,

    /// After a lost lease, how long the command has between SIGTERM and SIGKILL
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub grace: Duration,

    /// The lock id
    pub lock_id: String,

    /// The command and its arguments (after `--`)
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

fn duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// A password or API key: `Debug` shows `<redacted>`, and nothing prints it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Secret(value)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("eslock").chain(line.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_and_flags_anywhere() {
        let cli = parse("--url http://h:1,http://h:2 --kibana get reindex/a --json").unwrap();
        assert_eq!(cli.connection.urls, ["http://h:1", "http://h:2"]);
        assert!(cli.index.kibana && cli.json);
        assert!(matches!(cli.command, Command::Get { lock_id } if lock_id == "reindex/a"));
        let cli = parse("list --prefix app --url http://a --url http://b --id-prefix re").unwrap();
        assert_eq!(cli.index.prefix.as_deref(), Some("app"));
        assert_eq!(cli.connection.urls, ["http://a", "http://b"]);
        assert!(matches!(cli.command, Command::List(Filter { id_prefix: Some(p) }) if p == "re"));
    }

    #[test]
    fn run_takes_the_rest_as_the_command() {
        let cli = parse("run --ttl 5s --wait 1m job -- sleep --flag 2").unwrap();
        let Command::Run(run) = cli.command else { panic!("not run") };
        assert_eq!((run.ttl, run.wait), (Duration::from_secs(5), Some(Duration::from_secs(60))));
        assert_eq!(run.lock_id, "job");
        assert_eq!(run.command, ["sleep", "--flag", "2"]);
        assert!(parse("run job").is_err(), "a command is required");
    }

    #[test]
    fn password_without_value_does_not_swallow_the_command() {
        let cli = parse("--username elastic --password list").unwrap();
        assert!(matches!(cli.connection.password, Some(None)));
        assert!(matches!(cli.command, Command::List(_)));
        let cli = parse("--username elastic --password=s3cret list").unwrap();
        assert_eq!(cli.connection.password.unwrap().unwrap().expose(), "s3cret");
    }

    #[test]
    fn usage_errors() {
        for line in [
            "",
            "get",
            "release a b",
            "frobnicate",
            "list --colour",
            "list --url",
            "--index a --kibana list",
            "--api-key k --username u list",
            "--password=p list",
            "watch --interval soon",
            "watch --iterations 0",
        ] {
            assert!(parse(line).is_err(), "{line:?} should be a usage error");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let cli = parse("--api-key topsecretkey list").unwrap();
        assert!(!format!("{cli:?}").contains("topsecretkey"), "{cli:?}");
        let cli = parse("--username u --password=hunter2 list").unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"), "{cli:?}");
    }
}
