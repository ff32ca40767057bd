//! `eslock watch` against the real engine: refreshes mark the locks acquired
//! and released in between.

mod common;

use std::process::Stdio;

use common::{command, eslock, index_args};
use eslock_test_support::{required_engine_url, unique_name};
use eslock::LockOptions;
use tokio::io::{AsyncBufReadExt, BufReader};

/// One refresh: the lines up to the blank line after it.
async fn frame(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Vec<String> {
    let mut frame = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.is_empty() {
            break;
        }
        frame.push(line);
    }
    frame
}

#[tokio::test]
async fn refreshes_mark_acquisitions_and_releases_in_between() {
    let url = required_engine_url();
    let index = unique_name("cli-watch");
    let manager = eslock_test_support::manager_on(eslock_test_support::client_for(&url), &index);
    let gone = manager.acquire("watch/gone", LockOptions::default()).await.unwrap();
    let _other = manager.acquire("other/ignored", LockOptions::default()).await.unwrap();

    let args = [index_args(&url, &index), ["watch", "--interval", "2s", "--iterations", "2", "--id-prefix", "watch/"].map(String::from).to_vec()].concat();
    let mut watch = tokio::process::Command::from(command(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();

    let first = frame(&mut lines).await;
    assert!(first[0].contains(&format!("{index}-000001")) && first[0].contains(": 1 lock"), "{first:#?}");
    assert!(first[1].contains("LOCK ID") && first[1].contains("HELD FOR"), "{first:#?}");
    assert!(first[2].starts_with("   watch/gone "), "{first:#?}");
    assert_eq!(first.len(), 3, "other/ignored is filtered out: {first:#?}");

    // Between the two refreshes: one acquisition, one release.
    let fresh = manager.acquire("watch/fresh", LockOptions::default()).await.unwrap();
    assert!(gone.release().await.unwrap());

    let second = frame(&mut lines).await;
    assert!(second[0].contains(": 1 lock (+1 acquired, -1 released)"), "{second:#?}");
    assert!(second.iter().any(|line| line.starts_with("+  watch/fresh ") && line.contains(&fresh.fencing_token().to_string())), "{second:#?}");
    assert!(second.iter().any(|line| line.starts_with("-  watch/gone ") && line.contains("released")), "{second:#?}");
    assert!(watch.wait().await.unwrap().success(), "stops after --iterations 2");

    // --once: one refresh, nothing marked.
    let once = eslock(&[index_args(&url, &index).iter().map(String::as_str).collect::<Vec<_>>(), vec!["watch", "--once"]].concat());
    let once = String::from_utf8(once.stdout).unwrap();
    assert!(once.contains("watch/fresh") && once.contains("other/ignored") && !once.contains("acquired"), "{once}");
    fresh.release().await.unwrap();
}
