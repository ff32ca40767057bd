//! The Elasticsearch client from the connection options: node URLs
//! (round-robin), credentials, and a private CA.

use std::io::{BufRead, IsTerminal};

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Url;
use elasticsearch::http::transport::{MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder};

use crate::Fail;
use crate::args::{Connection, Secret};

const DEFAULT_URL: &str = "http://127.0.0.1:9200";

pub fn client(connection: &Connection) -> Result<Elasticsearch, Fail> {
    let mut credentials = credentials(connection)?;
    let mut urls = Vec::new();
    for text in connection.urls.iter().map(|url| url.trim()).filter(|url| !url.is_empty()) {
        let mut url: Url = text.parse().map_err(|err| Fail::usage(format!("--url {:?} is not a URL: {err}", redact(text))))?;
        // Credentials in a URL become basic auth, and leave the URL so that
        // no error message can show them.
        if !url.username().is_empty() {
            if credentials.is_none() {
                let password = url.password().map(percent_decode).unwrap_or_default();
                credentials = Some(Credentials::Basic(percent_decode(url.username()), password));
            }
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        urls.push(url);
    }
    if urls.is_empty() {
        urls.push(DEFAULT_URL.parse().expect("a valid default URL"));
    }
    let mut builder = match <[Url; 1]>::try_from(urls) {
        Ok([url]) => TransportBuilder::new(SingleNodeConnectionPool::new(url)),
        Err(several) => TransportBuilder::new(MultiNodeConnectionPool::round_robin(several, None)),
    };
    if let Some(credentials) = credentials {
        builder = builder.auth(credentials);
    }
    if let Some(path) = &connection.ca_cert {
        let bytes = std::fs::read(path).map_err(|err| Fail::failed(format!("--ca-cert {}: {err}", path.display())))?;
        let cert = Certificate::from_pem(&bytes)
            .or_else(|_| Certificate::from_der(&bytes))
            .map_err(|err| Fail::failed(format!("--ca-cert {}: not a PEM or DER certificate: {err}", path.display())))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder.build().map_err(|err| match &connection.ca_cert {
        // A DER file is only parsed here.
        Some(path) => Fail::failed(format!("--ca-cert {}: not a usable certificate: {}", path.display(), with_sources(&err))),
        None => Fail::failed(format!("no HTTP client: {}", with_sources(&err))),
    })?;
    Ok(Elasticsearch::new(transport))
}

fn credentials(connection: &Connection) -> Result<Option<Credentials>, Fail> {
    let non_empty = |secret: &Secret| !secret.expose().is_empty();
    if let Some(key) = connection.api_key.as_ref().filter(|key| non_empty(key)) {
        return Ok(Some(match key.expose().split_once(':') {
            Some((id, key)) => Credentials::ApiKey(id.to_string(), key.to_string()),
            None => Credentials::EncodedApiKey(key.expose().to_string()),
        }));
    }
    let Some(username) = connection.username.as_ref().filter(|name| !name.is_empty()) else {
        return Ok(None);
    };
    let password = match &connection.password {
        Some(Some(password)) => password.clone(),
        Some(None) if !std::io::stdin().is_terminal() => read_line_from_stdin()?,
        _ if std::io::stdin().is_terminal() => prompt(username)?,
        _ => return Err(Fail::usage(format!("--username {username} needs a password: --password=..., ELASTICSEARCH_PASSWORD, or --password on a terminal"))),
    };
    Ok(Some(Credentials::Basic(username.clone(), password.expose().to_string())))
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

/// An error and its causes, `a: b: c` (reqwest's own message is terse).
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

/// `%XX` escapes decoded (user names and passwords in URLs are percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL for an error message, without anything between `//` and `@`.
fn redact(url: &str) -> String {
    match (url.find("//"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}<redacted>{}", &url[..start + 2], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(redact("http://elastic:pw@h:9200"), "http://<redacted>@h:9200");
        assert_eq!(redact("http://h:9200"), "http://h:9200");
        assert_eq!(percent_decode("p%40ss%3Aword%"), "p@ss:word%");
    }
}
