//! The `eslock` binary against the real engine (`ELASTICSEARCH_URL`): list,
//! get, release, setup, the Kibana index, usage errors, help and completions.
//! `run`, `watch` and the connection options have test files of their own.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{all_output, eslock, text};
use eslock_test_support::required_engine_url;
use eslock::LockOptions;
use serde_json::{Value, json};

#[tokio::test]
async fn list_get_and_release_locks() {
    let url = required_engine_url();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let index = format!("cli-{}-{nanos}", std::process::id());
    let base = ["--url", url.as_str(), "--index", index.as_str()];
    let run = |extra: &[&str]| eslock(&[&base[..], extra].concat());

    let setup = run(&["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    assert!(text(&setup.stdout).contains(&format!("{index}-000001")));
    let empty = run(&["list"]);
    assert!(text(&empty.stdout).contains("no locks are held"));

    let manager = eslock_test_support::manager_on(eslock_test_support::client_for(&url), &index);
    let lease = manager
        .acquire("reindex/logs:2024", LockOptions::default().metadata(json!({ "host": "worker-1" })))
        .await
        .unwrap();

    let _other = manager.acquire("migrations", LockOptions::default()).await.unwrap();

    let table = run(&["list"]);
    assert!(table.status.success());
    let table = text(&table.stdout);
    assert!(table.starts_with("LOCK ID"), "{table}");
    let header: Vec<&str> = table.lines().next().unwrap().split("  ").map(str::trim).filter(|cell| !cell.is_empty()).collect();
    assert_eq!(header, ["LOCK ID", "FENCING TOKEN", "HELD FOR", "EXPIRES IN", "METADATA"]);
    let row = table.lines().find(|line| line.starts_with("reindex/logs:2024")).expect("a row for the lock");
    assert!(row.contains(&lease.fencing_token().to_string()) && row.contains(r#"{"host":"worker-1"}"#), "{table}");
    // 30 s TTL; a loaded machine may take a few seconds to get here.
    assert!((25..=30).any(|left| row.contains(&format!(" {left}s "))), "expires in about 30 s: {table}");
    assert!(table.contains("migrations"), "{table}");

    // --id-prefix filters the ids (--prefix is the index prefix).
    let filtered = text(&run(&["list", "--id-prefix", "reindex/"]).stdout);
    assert!(filtered.contains("reindex/logs:2024") && !filtered.contains("migrations"), "{filtered}");
    let listed: Value = serde_json::from_slice(&run(&["list", "--json", "--id-prefix", "reindex/"]).stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["lock_id"], "reindex/logs:2024");
    assert!(text(&run(&["list", "--id-prefix", "nothing/"]).stdout).contains("no locks are held"));

    let one = run(&["get", "reindex/logs:2024"]);
    assert!(one.status.success());
    assert_eq!(text(&one.stdout).lines().count(), 2, "a header and one row");

    let got = run(&["--json", "get", "reindex/logs:2024"]);
    assert!(got.status.success());
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["fencing_token"], json!(lease.fencing_token()));
    assert_eq!(got["metadata"], json!({ "host": "worker-1" }));

    let released = run(&["release", "reindex/logs:2024"]);
    assert!(released.status.success(), "{}", text(&released.stderr));
    assert!(lease.is_lost() || manager.get("reindex/logs:2024").await.unwrap().is_none());
    let absent = run(&["get", "reindex/logs:2024"]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(text(&absent.stderr).contains("is not held"));
    assert_eq!(run(&["release", "reindex/logs:2024"]).status.code(), Some(1));
}

#[test]
fn usage_and_input_errors_are_reported() {
    let usage = eslock(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("unrecognized subcommand 'frobnicate'"), "{}", all_output(&usage));
    assert!(text(&usage.stderr).contains("Usage: eslock"));
    for args in [&[][..], &["get"], &["release", "a", "b"], &["list", "--colour"], &["--index", "a", "--kibana", "list"], &["run", "job"]] {
        assert_eq!(eslock(args).status.code(), Some(2), "{args:?}");
    }

    // Refused before any request: no engine needed.
    let bad_id = eslock(&["--url", "http://127.0.0.1:1", "get", "bad id"]);
    assert_eq!(bad_id.status.code(), Some(3));
    assert!(text(&bad_id.stderr).contains("invalid lock id"), "{}", text(&bad_id.stderr));

    let help = eslock(&["--help"]);
    assert!(help.status.success());
    for command in ["list", "get", "release", "setup", "watch", "run", "completions"] {
        assert!(text(&help.stdout).contains(&format!("  {command} ")), "{command} is listed");
        let long = eslock(&[command, "--help"]);
        assert!(long.status.success());
        assert!(text(&long.stdout).contains("Examples:\n  eslock "), "{command} --help has examples");
    }
    assert!(text(&eslock(&["release", "--help"]).stdout).contains("release [OPTIONS] <LOCK_ID>"));
    assert!(text(&help.stdout).contains("Exit status:"));
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef eslock"), ("fish", "complete -c eslock")] {
        let script = eslock(&["completions", shell]);
        assert!(script.status.success(), "{shell}");
        let script = text(&script.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("release") && script.contains("id-prefix") && script.contains("ca-cert"), "{shell}");
    }
    assert_eq!(eslock(&["completions", "tcsh"]).status.code(), Some(2));
}

/// In Kibana mode, locks that Kibana wrote under free-form ids (spaces and
/// all) can be read and force-released from the command line.
#[tokio::test]
async fn kibana_locks_with_free_form_ids() {
    use elasticsearch::http::Method;
    use elasticsearch::http::headers::HeaderMap;
    use elasticsearch::http::request::JsonBody;

    let url = required_engine_url();
    let base = ["--url", url.as_str(), "--kibana"];
    let run = |extra: &[&str]| eslock(&[&base[..], extra].concat());
    assert!(run(&["setup"]).status.success());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let id = format!("Kibana task {nanos}: re-index (ü)");
    let encoded: String = id.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let later = humantime::format_rfc3339_millis(SystemTime::now() + std::time::Duration::from_secs(300)).to_string();
    let document = json!({ "token": "kibana-token", "createdAt": now, "expiresAt": later, "metadata": { "by": "kibana" } });
    let client = eslock::store::elasticsearch::client(&url).unwrap();
    let path = format!("/.kibana_locks-000001/_doc/{encoded}?refresh=true");
    let written = client.send(Method::Put, &path, HeaderMap::new(), None::<&()>, Some(JsonBody::new(document)), None).await.unwrap();
    assert!(written.status_code().is_success());

    let got = run(&["--json", "get", &id]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["lock_id"], json!(id));
    assert_eq!(got["fencing_token"], Value::Null, "Kibana's holder wrote no fencing token");
    let table = text(&run(&["list"]).stdout);
    let row = table.lines().find(|line| line.starts_with(&id)).unwrap_or_else(|| panic!("{table}"));
    assert!(row[id.len()..].trim_start().starts_with("- "), "no fencing token shows as \"-\": {table}");
    let released = run(&["release", "--yes", &id]);
    assert!(released.status.success(), "{}", text(&released.stderr));
    assert_eq!(run(&["get", &id]).status.code(), Some(1));
}
