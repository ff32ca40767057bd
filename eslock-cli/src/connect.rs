//! The Elasticsearch client from the connection options: node URLs
//! (round-robin), credentials, and a private CA, through the library's
//! [`Connection`] (which reads them the way `LockManager::from_env` does).
//! Only asking for a password is the CLI's own.

use std::io::{BufRead, IsTerminal};

use elasticsearch::Elasticsearch;
use eslock::Error;
use eslock::store::elasticsearch::Connection;

use crate::Fail;
use crate::args::{Connection as Options, Secret};

const DEFAULT_URL: &str = "http://127.0.0.1:9200";

pub(crate) fn client(options: &Options) -> Result<Elasticsearch, Fail> {
    let urls = options.urls.join(",");
    let mut connection = Connection::new(if urls.trim_matches([',', ' ']).is_empty() { DEFAULT_URL } else { &urls });
    if let Some(key) = options.api_key.as_ref().filter(|key| !key.expose().is_empty()) {
        connection = connection.api_key(key.expose());
    } else if let Some(username) = options.username.as_ref().filter(|name| !name.is_empty()) {
        connection = connection.basic_auth(username, password(options, username)?.expose());
    }
    if let Some(path) = &options.ca_cert {
        connection = connection.ca_cert(path);
    }
    connection.client().map_err(|err| match err {
        Error::InvalidOption(invalid) if invalid.option == "url" => Fail::usage(format!("--url {}", invalid.reason)),
        Error::InvalidOption(invalid) if invalid.option == "ca_cert" => Fail::failed(format!("--ca-cert {}", invalid.reason)),
        other => Fail::failed(other.to_string()),
    })
}

fn password(options: &Options, username: &str) -> Result<Secret, Fail> {
    match &options.password {
        Some(Some(password)) => Ok(password.clone()),
        Some(None) if !std::io::stdin().is_terminal() => read_line_from_stdin(),
        _ if std::io::stdin().is_terminal() => prompt(username),
        _ => Err(Fail::usage(format!("--username {username} needs a password: --password=..., ELASTICSEARCH_PASSWORD, or --password on a terminal"))),
    }
}

fn prompt(username: &str) -> Result<Secret, Fail> {
    rpassword::prompt_password(format!("password for {username}: "))
        .map(Secret::new)
        .map_err(|err| Fail::failed(format!("could not read the password: {err}")))
}

fn read_line_from_stdin() -> Result<Secret, Fail> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| Fail::failed(format!("could not read the password from standard input: {err}")))?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n']).to_string()))
}
