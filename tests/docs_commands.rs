//! Every `bext …` command shown in a code block of README.md or docs/*.md parses with the
//! command line the binary uses (`src/cli`, compiled here as it is in the binary), so that the
//! documentation cannot drift from the CLI: a renamed flag, a removed subcommand or a value the
//! CLI refuses fails this test.

#[path = "../src/cli/mod.rs"]
#[allow(dead_code)]
mod cli;

use clap::Parser;
use std::path::{Path, PathBuf};

fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

/// The `bext` command lines of the fenced code blocks of `text`, with their line numbers: a
/// line that starts with `bext ` (or `$ bext `), without its trailing comment and `&`. Blocks
/// of configuration, JSON or Rust hold no commands.
fn commands(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_string()),
            };
            continue;
        }
        let Some(lang) = &fence else { continue };
        if matches!(lang.as_str(), "bext" | "json" | "rust" | "toml") {
            continue;
        }
        let cmd = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
        if cmd.starts_with("bext ") || cmd == "bext" {
            out.push((i + 1, cmd.to_string()));
        }
    }
    out
}

/// Split a command line as a shell would for the simple lines the documentation shows: single
/// and double quotes, a trailing `# comment` and a trailing `&`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.last().is_some_and(|w| w == "&") {
        words.pop();
    }
    words
}

#[test]
fn the_command_line_splitter_handles_what_the_docs_show() {
    assert_eq!(
        words("bext respond --listen 8081 --body 'hello world'  # a comment"),
        [
            "bext",
            "respond",
            "--listen",
            "8081",
            "--body",
            "hello world"
        ]
    );
    assert_eq!(
        words("bext origin --listen 127.0.0.1:9001 &      # an origin"),
        ["bext", "origin", "--listen", "127.0.0.1:9001"]
    );
    let found = commands("text\n```sh\nbext version\ncurl x\n```\n```bext\nbext x\n```\n");
    assert_eq!(found, [(3, "bext version".to_string())]);
}

#[test]
fn every_documented_bext_command_parses() {
    let mut seen = 0;
    let mut broken = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read document");
        for (line, cmd) in commands(&text) {
            seen += 1;
            match cli::Cli::try_parse_from(words(&cmd)) {
                Ok(_) => {}
                // `bext --help` and the like are commands too.
                Err(e) if !e.use_stderr() => {}
                Err(e) => broken.push(format!("{}:{line}: `{cmd}`: {}", doc.display(), e.render())),
            }
        }
    }
    // README.md and docs/operations.md alone show more than this.
    assert!(seen >= 15, "only {seen} commands found");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
