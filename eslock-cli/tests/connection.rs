//! Connection options: credentials (checked on a local endpoint that records
//! the `Authorization` header, since the engine here runs without security),
//! secrets kept out of every message, several URLs, and a private CA (a TLS
//! proxy in front of the real engine, with a certificate from a CA made here).

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;

use common::{all_output, command, eslock, text};
use eslock_test_support::recorder::{Recorder, base64};
use eslock_test_support::{required_engine_url, unique_name};

const PASSWORD: &str = "pa55-w0rd-never-shown";
const API_KEY_SECRET: &str = "api-key-secret-never-shown";

#[test]
fn basic_auth_from_options_and_environment() {
    let recorder = Recorder::start();
    let expected = format!("Basic {}", base64(format!("elastic:{PASSWORD}").as_bytes()));

    let password = format!("--password={PASSWORD}");
    let flags = eslock(&["--url", &recorder.url, "--username", "elastic", &password, "get", "some-lock"]);
    assert_eq!(flags.status.code(), Some(3), "{}", all_output(&flags));
    assert!(!all_output(&flags).contains(PASSWORD), "{}", all_output(&flags));

    let env = command(&["get", "some-lock"])
        .env("ELASTICSEARCH_URL", &recorder.url)
        .env("ELASTICSEARCH_USERNAME", "elastic")
        .env("ELASTICSEARCH_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(3));
    assert!(!all_output(&env).contains(PASSWORD), "{}", all_output(&env));

    let authorizations = recorder.authorizations();
    assert!(authorizations.len() >= 2, "{authorizations:?}");
    assert!(authorizations.iter().all(|value| *value == expected), "{authorizations:?}");
}

#[test]
fn password_without_a_value_is_read_from_standard_input_off_a_terminal() {
    let recorder = Recorder::start();
    let mut child = command(&["--url", &recorder.url, "--username", "ops", "--password", "list"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(!all_output(&output).contains(PASSWORD));
    let expected = format!("Basic {}", base64(format!("ops:{PASSWORD}").as_bytes()));
    assert_eq!(recorder.authorizations().first(), Some(&expected));

    // A user name without any password, and no terminal to ask on.
    let missing = eslock(&["--url", &recorder.url, "--username", "ops", "list"]);
    assert_eq!(missing.status.code(), Some(2), "{}", all_output(&missing));
    assert!(text(&missing.stderr).contains("needs a password"));
}

#[test]
fn api_keys_encoded_or_as_id_and_key() {
    let recorder = Recorder::start();
    let encoded = base64(format!("key-id:{API_KEY_SECRET}").as_bytes());
    let as_given = eslock(&["--url", &recorder.url, "--api-key", &encoded, "list"]);
    assert_eq!(as_given.status.code(), Some(3));
    let id_and_key = format!("key-id:{API_KEY_SECRET}");
    let from_env = command(&["--url", &recorder.url, "release", "x"]).env("ELASTICSEARCH_API_KEY", &id_and_key).output().unwrap();
    assert_eq!(from_env.status.code(), Some(3));
    for output in [&as_given, &from_env] {
        let shown = all_output(output);
        assert!(!shown.contains(API_KEY_SECRET) && !shown.contains(&encoded), "{shown}");
        assert!(shown.contains("401") || shown.contains("authenticate"), "the failure is reported: {shown}");
    }
    let authorizations = recorder.authorizations();
    assert!(!authorizations.is_empty());
    assert!(authorizations.iter().all(|value| *value == format!("ApiKey {encoded}")), "{authorizations:?}");
}

#[test]
fn credentials_in_a_url_become_basic_auth_and_are_never_shown() {
    let recorder = Recorder::start();
    let port = recorder.url.rsplit(':').next().unwrap();
    let url = format!("http://elastic:{PASSWORD}@127.0.0.1:{port}");
    let output = eslock(&["--url", &url, "list"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(!all_output(&output).contains(PASSWORD), "{}", all_output(&output));
    let expected = format!("Basic {}", base64(format!("elastic:{PASSWORD}").as_bytes()));
    assert_eq!(recorder.authorizations().first(), Some(&expected));

    // Nothing listens there: the connection error names the node, not the password.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = eslock(&["--url", &format!("http://elastic:{PASSWORD}@127.0.0.1:{closed}"), "list"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(!all_output(&refused).contains(PASSWORD), "{}", all_output(&refused));

    // Nor in help, with the secrets in the environment.
    let help = command(&["--help"]).env("ELASTICSEARCH_PASSWORD", PASSWORD).env("ELASTICSEARCH_API_KEY", API_KEY_SECRET).output().unwrap();
    assert!(help.status.success());
    let shown = all_output(&help);
    assert!(!shown.contains(PASSWORD) && !shown.contains(API_KEY_SECRET), "{shown}");
}

#[test]
fn several_urls_share_the_requests() {
    let url = required_engine_url();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{closed}");
    let index = unique_name("cli-urls");
    // A node that cannot be reached is skipped for the next one, in both spellings.
    let repeated = eslock(&["--url", &dead, "--url", &url, "--index", &index, "setup"]);
    assert!(repeated.status.success(), "{}", all_output(&repeated));
    for _ in 0..3 {
        let listed = command(&["--index", &index, "list"]).env("ELASTICSEARCH_URL", format!("{dead},{url}")).output().unwrap();
        assert!(listed.status.success(), "{}", all_output(&listed));
        assert!(text(&listed.stdout).contains("no locks are held"));
    }
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it.
fn private_ca() -> (String, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca_cert.pem(), server_cert.der().to_vec(), server_key.serialize_der())
}

/// Terminates TLS on 127.0.0.1 and passes the bytes on to the engine.
async fn tls_proxy(cert: Vec<u8>, key: Vec<u8>, engine: String) -> String {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::{ServerConfig, crypto::ring};

    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert)], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let engine = engine.trim_start_matches("http://").trim_end_matches('/').to_string();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, engine) = (acceptor.clone(), engine.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&engine).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_with_ca_cert() {
    let (ca_pem, cert, key) = private_ca();
    let url = tls_proxy(cert, key, required_engine_url()).await;
    let dir = std::env::temp_dir().join(unique_name("cli-ca"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let ca_path = ca_file.to_str().unwrap().to_string();
    let index = unique_name("cli-tls");

    let run = move |args: Vec<String>, ca_env: Option<String>| {
        tokio::task::spawn_blocking(move || {
            let mut command = command(&args.iter().map(String::as_str).collect::<Vec<_>>());
            if let Some(path) = ca_env {
                command.env("ELASTICSEARCH_CA_CERT", path);
            }
            command.output().unwrap()
        })
    };
    let with_ca = run(vec!["--url".into(), url.clone(), "--index".into(), index.clone(), "--ca-cert".into(), ca_path.clone(), "setup".into()], None).await.unwrap();
    assert!(with_ca.status.success(), "{}", all_output(&with_ca));
    let from_env = run(vec!["--url".into(), url.clone(), "--index".into(), index.clone(), "list".into()], Some(ca_path.clone())).await.unwrap();
    assert!(from_env.status.success(), "{}", all_output(&from_env));

    let untrusted = run(vec!["--url".into(), url.clone(), "--index".into(), index.clone(), "list".into()], None).await.unwrap();
    assert_eq!(untrusted.status.code(), Some(3), "{}", all_output(&untrusted));

    let not_a_cert = dir.join("not-a-cert.pem");
    std::fs::write(&not_a_cert, "hello").unwrap();
    let bad = run(vec!["--url".into(), url, "--ca-cert".into(), not_a_cert.to_str().unwrap().into(), "list".into()], None).await.unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(text(&bad.stderr).contains("--ca-cert"), "{}", all_output(&bad));
    let _ = std::fs::remove_dir_all(dir);
}
