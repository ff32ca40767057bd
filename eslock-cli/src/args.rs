//! Command-line arguments, parsed by hand: four commands and a few flags.

use std::fmt;

pub const USAGE: &str = "\
usage: eslock [OPTIONS] <COMMAND>

commands:
  list                 show every live lock
  get <LOCK_ID>        show one lock (exit status 1 when it is not held)
  release <LOCK_ID>    force-release a lock whoever holds it (exit status 1 when none)
  setup                create the lock index and its templates (idempotent)

options:
  --url <URL>          cluster to use (default: $ELASTICSEARCH_URL, else http://127.0.0.1:9200)
  --index <NAME>       lock index alias (default: .eslock-locks)
  --prefix <PREFIX>    lock index <PREFIX>-locks
  --kibana             Kibana's lock index (.kibana_locks)
  --json               print JSON instead of a table
  -h, --help           print this help";

/// Which lock index to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Index {
    Default,
    Named(String),
    Prefix(String),
    Kibana,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    List,
    Get(String),
    Release(String),
    Setup,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub url: Option<String>,
    pub index: Index,
    pub json: bool,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\n{USAGE}", self.0)
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, UsageError> {
    let mut url = None;
    let mut index = Index::Default;
    let mut json = false;
    let mut words = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| UsageError(format!("{flag} needs a value")));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Args { url, index, json, command: Command::Help }),
            "--url" => url = Some(value("--url")?),
            "--index" => index = Index::Named(value("--index")?),
            "--prefix" => index = Index::Prefix(value("--prefix")?),
            "--kibana" => index = Index::Kibana,
            "--json" => json = true,
            flag if flag.starts_with('-') => return Err(UsageError(format!("unknown option {flag}"))),
            word => words.push(word.to_string()),
        }
    }
    let command = match words.as_slice() {
        [command] if command == "list" => Command::List,
        [command] if command == "setup" => Command::Setup,
        [command, id] if command == "get" => Command::Get(id.clone()),
        [command, id] if command == "release" => Command::Release(id.clone()),
        [] => return Err(UsageError("no command given".into())),
        [command, ..] if matches!(command.as_str(), "get" | "release") => {
            return Err(UsageError(format!("{command} takes exactly one lock id")));
        }
        [command, ..] => return Err(UsageError(format!("unknown command `{command}`"))),
    };
    Ok(Args { url, index, json, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Args, UsageError> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn commands_and_flags() {
        let args = parse_words("--url http://h:1 --kibana --json get reindex/a").unwrap();
        assert_eq!(args.url.as_deref(), Some("http://h:1"));
        assert_eq!(args.index, Index::Kibana);
        assert!(args.json);
        assert_eq!(args.command, Command::Get("reindex/a".into()));
        assert_eq!(parse_words("list --prefix app").unwrap().index, Index::Prefix("app".into()));
        assert_eq!(parse_words("--help").unwrap().command, Command::Help);
    }

    #[test]
    fn usage_errors() {
        assert!(parse_words("").is_err());
        assert!(parse_words("get").is_err());
        assert!(parse_words("release a b").is_err());
        assert!(parse_words("frobnicate").is_err());
        assert!(parse_words("list --colour").is_err());
        assert!(parse_words("list --url").is_err());
    }
}
