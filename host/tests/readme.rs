//! The documents cannot drift from the code: every `livestore-sync` command in the README,
//! CONTRIBUTING.md and MIGRATING.md must parse, every subcommand must be documented, every shell
//! block and script snippet must parse, and the hook shown in full must be the repository's.

use clap::{CommandFactory, Parser};
use livestore_sync::cli_args::Cli;

const README: &str = include_str!("../../README.md");

/// Shell lines inside the documents' sh blocks, with `\` continuations joined.
fn shell_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for block in code_blocks("sh") {
        let mut pending = String::new();
        for line in block.lines() {
            let trimmed = line.trim();
            if let Some(head) = trimmed.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            pending.push_str(trimmed);
            lines.push(std::mem::take(&mut pending));
        }
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

/// The code blocks with the given language tag in the project's documents (README,
/// CONTRIBUTING, MIGRATING).
fn code_blocks(lang: &str) -> Vec<String> {
    let docs = [README, include_str!("../../CONTRIBUTING.md"), include_str!("../../MIGRATING.md")];
    docs.iter().flat_map(|doc| livestore_sync_tests::markdown_code_blocks(doc, lang)).collect()
}

fn repo_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_hook_shown_in_full_is_the_hook_in_the_repository() {
    let toml = code_blocks("toml");
    assert_eq!(toml.first().map(String::as_str), Some(repo_file("hooks/static-token/Cargo.toml").trim_end()));
    assert_eq!(code_blocks("rust"), vec![repo_file("hooks/static-token/src/lib.rs").trim_end().to_string()]);
}

/// Every shell block is valid shell (`bash -n`), and the lines a reader types into a WebSocket
/// session (`{…}`) are valid JSON.
#[test]
fn every_shell_block_parses() {
    let blocks = code_blocks("sh");
    assert!(blocks.len() >= 15, "found {} sh blocks", blocks.len());
    for block in blocks {
        let mut shell = String::new();
        for line in block.lines() {
            if line.trim_start().starts_with('{') {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
                    panic!("README shows a message that is not JSON: {line}\n{e}");
                }
            } else {
                shell.push_str(line);
                shell.push('\n');
            }
        }
        let out = std::process::Command::new("bash").args(["-n", "-c", &shell]).output().expect("bash is installed");
        assert!(
            out.status.success(),
            "README shell block does not parse:\n{shell}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every JavaScript and TypeScript snippet is valid module syntax (`node --check`; the snippets
/// use no type annotations). The quick start's app is also run (`tests/quickstart.rs`).
#[test]
fn every_script_snippet_parses() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let snippets: Vec<String> = ["js", "ts", "tsx"].iter().flat_map(|l| code_blocks(l)).collect();
    assert!(snippets.len() >= 4, "found {} snippets", snippets.len());
    for (i, code) in snippets.iter().enumerate() {
        let file = dir.path().join(format!("snippet-{i}.mjs"));
        std::fs::write(&file, code).expect("writing a snippet");
        let out = std::process::Command::new("node").arg("--check").arg(&file).output().expect("node is installed");
        assert!(
            out.status.success(),
            "README snippet does not parse:\n{code}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
