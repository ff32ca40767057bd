//! How to reach a cluster: node URLs, credentials and a private CA, from
//! code or from the environment. Shared by [`LockManager::from_env`] and
//! the `eslock` CLI, so both read the same variables the same way.
//!
//! [`LockManager::from_env`]: crate::LockManager::from_env

use std::fmt;
use std::path::PathBuf;

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Url;
use elasticsearch::http::transport::{MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder};

use crate::error::{Error, Result};

/// The variable with the cluster's URL (several separated by commas).
pub const URL_VAR: &str = "ELASTICSEARCH_URL";
/// The variable with an API key (base64 "encoded" form, or `ID:KEY`).
pub const API_KEY_VAR: &str = "ELASTICSEARCH_API_KEY";
/// The variable with the user name for basic authentication.
pub const USERNAME_VAR: &str = "ELASTICSEARCH_USERNAME";
/// The variable with the password for basic authentication.
pub const PASSWORD_VAR: &str = "ELASTICSEARCH_PASSWORD";
/// The variable with the path of a private CA's certificate (PEM or DER).
pub const CA_CERT_VAR: &str = "ELASTICSEARCH_CA_CERT";

/// How to reach a cluster: one or more node URLs (requests go round-robin
/// over several, and a request that cannot reach one node is retried on
/// the next in the rotation, which other requests in flight may have moved
/// past, so a dead node can be tried twice; no sniffing), credentials, and
/// a private CA to trust.
///
/// Credentials in a URL (`https://user:pass@host:9200`) become basic
/// authentication unless others are given, and never appear in an error
/// message. `Debug` shows no secret either.
///
/// ```
/// use eslock::store::elasticsearch::Connection;
///
/// let client = Connection::new("https://10.0.0.1:9200,https://10.0.0.2:9200")
///     .basic_auth("locks", "secret")
///     .client()?;
/// let manager = eslock::LockManager::elasticsearch(client);
/// assert!(Connection::new("not a url").client().is_err());
/// # Ok::<(), eslock::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Connection {
    urls: Vec<String>,
    credentials: Option<Credentials>,
    ca_cert: Option<PathBuf>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("urls", &self.urls.iter().map(|url| redact(url)).collect::<Vec<_>>())
            .field("credentials", &self.credentials.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl Connection {
    /// The cluster at `urls`: one URL, or several separated by commas.
    pub fn new(urls: &str) -> Self {
        Connection {
            urls: urls.split(',').map(|url| url.trim().to_string()).filter(|url| !url.is_empty()).collect(),
            credentials: None,
            ca_cert: None,
        }
    }

    /// The cluster named by the environment, `None` when
    /// `ELASTICSEARCH_URL` is not set (or empty): node URLs from
    /// `ELASTICSEARCH_URL`, credentials from `ELASTICSEARCH_API_KEY`, or
    /// from `ELASTICSEARCH_USERNAME` and `ELASTICSEARCH_PASSWORD`, and a
    /// private CA from `ELASTICSEARCH_CA_CERT`. Both kinds of credentials,
    /// or a user name without a password, are an [`Error::InvalidOption`].
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(urls) = var(URL_VAR).filter(|urls| !urls.trim().is_empty()) else {
            return Ok(None);
        };
        let mut connection = Connection::new(&urls);
        match (var(API_KEY_VAR), var(USERNAME_VAR), var(PASSWORD_VAR)) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Error::invalid_option(
                    "credentials",
                    format!("set either {API_KEY_VAR} or {USERNAME_VAR} and {PASSWORD_VAR}, not both"),
                ));
            }
            (Some(key), None, None) => connection = connection.api_key(&key),
            (None, Some(username), Some(password)) => connection = connection.basic_auth(username, password),
            (None, Some(_), None) => return Err(Error::invalid_option("credentials", format!("{USERNAME_VAR} is set but {PASSWORD_VAR} is not"))),
            (None, None, Some(_)) => return Err(Error::invalid_option("credentials", format!("{PASSWORD_VAR} is set but {USERNAME_VAR} is not"))),
            (None, None, None) => {}
        }
        if let Some(path) = var(CA_CERT_VAR) {
            connection = connection.ca_cert(path);
        }
        Ok(Some(connection))
    }

    /// Basic authentication.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Basic(username.into(), password.into()));
        self
    }

    /// An API key: its base64 "encoded" form, or `ID:KEY`.
    pub fn api_key(mut self, key: &str) -> Self {
        self.credentials = Some(match key.split_once(':') {
            Some((id, key)) => Credentials::ApiKey(id.to_string(), key.to_string()),
            None => Credentials::EncodedApiKey(key.to_string()),
        });
        self
    }

    /// Trust the private CA whose certificate (PEM or DER) is at `path`.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// A client for the cluster. Bad URLs are an [`Error::InvalidOption`]
    /// for `url`, an unreadable CA certificate one for `ca_cert`.
    pub fn client(&self) -> Result<Elasticsearch> {
        let mut credentials = self.credentials.clone();
        let mut urls = Vec::with_capacity(self.urls.len());
        for text in &self.urls {
            let mut url: Url = text
                .parse()
                .map_err(|err| Error::invalid_option("url", format!("{:?} is not a URL: {err}", redact(text))))?;
            // Credentials in a URL become basic auth, and leave the URL so
            // that no error message can show them.
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
        let mut builder = match <[Url; 1]>::try_from(urls) {
            Ok([url]) => TransportBuilder::new(SingleNodeConnectionPool::new(url)),
            Err(several) if several.is_empty() => return Err(Error::invalid_option("url", "no URL given")),
            Err(several) => TransportBuilder::new(MultiNodeConnectionPool::round_robin(several, None)),
        };
        if let Some(credentials) = credentials {
            builder = builder.auth(credentials);
        }
        if let Some(path) = &self.ca_cert {
            let bytes = std::fs::read(path).map_err(|err| Error::invalid_option("ca_cert", format!("{}: {err}", path.display())))?;
            let cert = Certificate::from_pem(&bytes).or_else(|_| Certificate::from_der(&bytes)).map_err(|err| {
                Error::invalid_option("ca_cert", format!("{}: not a PEM or DER certificate: {err}", path.display()))
            })?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = builder.build().map_err(|err| match &self.ca_cert {
            // A DER file is only parsed here.
            Some(path) => Error::invalid_option("ca_cert", format!("{}: not a usable certificate: {}", path.display(), with_sources(&err))),
            None => Error::invalid_option("client", format!("no HTTP client: {}", with_sources(&err))),
        })?;
        Ok(Elasticsearch::new(transport))
    }
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

/// A URL for a message, without anything between `//` and `@`.
fn redact(url: &str) -> String {
    match (url.find("//"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}<redacted>{}", &url[..start + 2], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Option<Connection>> {
        let vars: HashMap<_, _> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Connection::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(redact("http://elastic:pw@h:9200"), "http://<redacted>@h:9200");
        assert_eq!(redact("http://h:9200"), "http://h:9200");
        assert_eq!(percent_decode("p%40ss%3Aword%"), "p@ss:word%");
        let err = Connection::new("http://elastic:pw@h:9200:x").client().unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(!format!("{:?}", Connection::new("http://a:pw@h").basic_auth("u", "pw2")).contains("pw"));
    }

    #[test]
    fn environment() {
        assert!(from(&[]).unwrap().is_none());
        assert!(from(&[(URL_VAR, " ")]).unwrap().is_none());
        let both = from(&[(URL_VAR, "http://h:9200,http://g:9200"), (API_KEY_VAR, "k")]).unwrap().unwrap();
        assert_eq!(both.urls, ["http://h:9200", "http://g:9200"]);
        assert!(matches!(both.credentials, Some(Credentials::EncodedApiKey(_))));
        let basic = from(&[(URL_VAR, "http://h"), (USERNAME_VAR, "u"), (PASSWORD_VAR, "p")]).unwrap().unwrap();
        assert!(matches!(basic.credentials, Some(Credentials::Basic(..))));
        for bad in [
            &[(URL_VAR, "http://h"), (USERNAME_VAR, "u")][..],
            &[(URL_VAR, "http://h"), (API_KEY_VAR, "k"), (USERNAME_VAR, "u"), (PASSWORD_VAR, "p")],
        ] {
            assert!(matches!(from(bad), Err(Error::InvalidOption(_))), "{bad:?}");
        }
        let with_ca = from(&[(URL_VAR, "http://h"), (CA_CERT_VAR, "/nonexistent.pem")]).unwrap().unwrap();
        assert!(matches!(with_ca.client(), Err(Error::InvalidOption(e)) if e.option == "ca_cert"));
    }
}
