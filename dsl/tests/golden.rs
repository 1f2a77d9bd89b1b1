//! Every `examples/*.bext` compiles without errors and lowers to the IR pinned in
//! `tests/golden/<name>.json`. Set `BEXT_BLESS=1` to rewrite the snapshots after an intended
//! change, and review the diff.

use std::path::{Path, PathBuf};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bext"))
        .collect();
    v.sort();
    v
}

#[test]
fn at_least_five_examples() {
    assert!(examples().len() >= 5, "{:?}", examples());
}

#[test]
fn examples_match_golden_ir() {
    let bless = std::env::var_os("BEXT_BLESS").is_some();
    let mut failures = vec![];
    for path in examples() {
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        // Compile under a stable relative name so Locs in the snapshot do not depend on where
        // the repository is checked out.
        let src = std::fs::read_to_string(&path).expect("read example");
        let name = format!("examples/{stem}.bext");
        let compiled = match bext_dsl::compile_str(&name, &src) {
            Ok(c) => c,
            Err(f) => {
                failures.push(format!("{name} does not compile:\n{}", f.render_human()));
                continue;
            }
        };
        // W0150 (a `static` root missing on this machine) describes the machine, not the
        // example: the examples name the directories of the hosts they are written for.
        assert!(
            compiled.warnings.iter().all(|w| w.code == "W0150"),
            "{name} has warnings:\n{}",
            compiled.render_warnings()
        );
        let json = serde_json::to_string_pretty(&compiled.config).expect("serialise") + "\n";
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{stem}.json"));
        if bless {
            std::fs::write(&golden, &json).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            // Compared as text, not as values: `Loc` compares equal by design, and the
            // snapshot pins the locations too.
            Ok(g) if g == json => {}
            Ok(_) => failures.push(format!(
                "{name}: IR differs from {} (BEXT_BLESS=1 to accept)",
                golden.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: no snapshot {} (BEXT_BLESS=1 to create)",
                golden.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_are_formatted() {
    for path in examples() {
        let src = std::fs::read_to_string(&path).expect("read");
        let f = bext_dsl::format_str("x", &src).expect("parses");
        assert_eq!(f, src, "{} is not in canonical format", path.display());
    }
}

#[test]
fn language_reference_snippets_parse() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md"))
            .expect("docs/language.md");
    let mut n = 0;
    for (i, block) in doc.split("```").enumerate() {
        if i % 2 == 1 {
            if let Some(body) = block.strip_prefix("bext\n") {
                n += 1;
                if let Err(f) = bext_dsl::format_str("language.md", body) {
                    panic!("snippet {n} does not parse:\n{body}\n{}", f.render_human());
                }
            }
        }
    }
    assert!(n >= 10, "{n} snippets");
}
