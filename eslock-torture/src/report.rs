//! `docs/RELIABILITY.md`: what each scenario injected, its figures, and
//! whether it passed, with the engine, the date and the command.

use std::fmt::Write;

use crate::scenarios::Outcome;

/// The report as Markdown.
pub fn markdown(outcomes: &[Outcome], engine: &str, command: &str) -> String {
    let mut text = String::new();
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(text, "# eslock reliability report\n");
    let _ = writeln!(text, "Written by the fault suite (`eslock-torture`); do not edit by hand.\n");
    let _ = writeln!(text, "- Date: {date}");
    let _ = writeln!(text, "- Engine: {engine}");
    let _ = writeln!(text, "- Machine: {cores} cores, {}", std::env::consts::ARCH);
    let _ = writeln!(text, "- Command: `{command}`");
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let _ = writeln!(text, "- Result: {passed} of {} scenarios passed\n", outcomes.len());
    let _ = writeln!(text, "Every holder records each hold (lock id, fencing token, when it was acquired, until when its");
    let _ = writeln!(text, "lease was confirmed trusted, whether it wrote the counter) on `CLOCK_MONOTONIC`, shared by all");
    let _ = writeln!(text, "processes. The checker fails on two trusted holds of one id that overlap (unless an operator");
    let _ = writeln!(text, "force-released between the two grants, in the engine's order: smaller fencing token first), on");
    let _ = writeln!(text, "a fencing token not larger than that of a hold acquired");
    let _ = writeln!(text, "before it was even requested, and on lost updates of a counter per lock id (writes minus");
    let _ = writeln!(text, "its final value).\n");
    for outcome in outcomes {
        let status = if outcome.passed() { "PASS" } else { "FAIL" };
        let _ = writeln!(text, "## {} — {status}\n", outcome.name);
        let _ = writeln!(text, "Injected: {}\n", outcome.injected);
        let _ = writeln!(text, "| figure | value |\n|---|---|");
        for (name, value) in &outcome.figures {
            let _ = writeln!(text, "| {name} | {value} |");
        }
        for failure in &outcome.failures {
            let _ = writeln!(text, "\n- failure: {failure}");
        }
        text.push('\n');
    }
    text
}
