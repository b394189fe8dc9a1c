//! The README cannot drift from the CLI: every `livestore-sync` command it shows must parse,
//! and every subcommand must be documented.

use clap::{CommandFactory, Parser};
use livestore_sync::cli_args::Cli;

const README: &str = include_str!("../../README.md");

/// Shell lines inside ```sh blocks, with `\` continuations joined.
fn shell_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in README.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh" || trimmed == "```bash";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

/// The arguments after the program name of a `livestore-sync …` or `cargo run … -- …` line.
fn cli_args(line: &str) -> Option<Vec<String>> {
    let code = line.split(" #").next().unwrap_or(line);
    let words = shlex::split(code)?;
    let words: Vec<String> = words.into_iter().skip_while(|w| w.contains('=') && !w.starts_with('-')).collect();
    match words.first().map(String::as_str) {
        Some("livestore-sync") => Some(words[1..].to_vec()),
        Some("cargo") if words.get(1).is_some_and(|w| w == "run") && words.iter().any(|w| w == "livestore-sync") => {
            let dash = words.iter().position(|w| w == "--")?;
            Some(words[dash + 1..].to_vec())
        }
        _ => None,
    }
}

#[test]
fn every_readme_command_parses() {
    let mut checked = 0;
    for line in shell_lines() {
        let Some(args) = cli_args(&line) else { continue };
        let argv = std::iter::once("livestore-sync".to_string()).chain(args);
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("README command does not parse: {line}\n{e}");
        }
        checked += 1;
    }
    assert!(checked >= 8, "expected the README to show the CLI, found {checked} commands");
}

#[test]
fn every_subcommand_is_documented() {
    let cmd = Cli::command();
    for sub in cmd.get_subcommands() {
        let nested: Vec<_> = sub.get_subcommands().map(|s| format!("{} {}", sub.get_name(), s.get_name())).collect();
        let names = if nested.is_empty() { vec![sub.get_name().to_string()] } else { nested };
        for name in names {
            assert!(
                shell_lines().iter().any(|l| cli_args(l).is_some_and(|a| a.join(" ").starts_with(&name))),
                "README shows no `livestore-sync {name}` command"
            );
        }
    }
}
