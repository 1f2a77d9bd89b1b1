//! `bext check` and `bext fmt` as an operator runs them: exit codes, what is printed where, and
//! the shape of human and JSON diagnostics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bext(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bext"))
        .args(args)
        .output()
        .expect("run bext")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bext"))
        .collect();
    v.sort();
    v
}

/// A scratch file that is removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, content: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bext-cli-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let p = dir.join(name);
        std::fs::write(&p, content).expect("write");
        Scratch(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const BAD: &str = "listen :8080\nupstream app { server 127.0.0.1:9000 }\nsite a.test {\n    route /* { proxy apq }\n    route /x/* { respond 999 }\n}\n";

/// Every example is valid language; those that use directives the engine does not run yet pass
/// with `--language-only` (see `examples_the_engine_cannot_run_are_refused_by_check`).
#[test]
fn every_example_checks_clean_with_a_summary() {
    let ex = examples();
    assert!(ex.len() >= 5);
    for p in ex {
        let out = bext(&["check", "--language-only", p.to_str().expect("path")]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            p.display(),
            text(&out.stderr)
        );
        assert!(stdout.starts_with("ok: "), "{stdout}");
        assert!(
            stdout.contains(" route") && stdout.contains(" listener"),
            "{stdout}"
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
}

/// `bext check` without `--language-only` checks what `bext run` would: the engine refuses
/// nothing in the examples (no E0501), the quickstart, the static site and the gateway pass,
/// and the edge site's only findings are its machine's certificate files.
#[test]
fn examples_pass_check_as_run_would_take_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let path = |n: &str| dir.join(n).to_str().expect("path").to_string();
    for name in ["quickstart.bext", "static-site.bext", "api-gateway.bext"] {
        let ok = bext(&["check", &path(name)]);
        assert_eq!(ok.status.code(), Some(0), "{name}: {}", text(&ok.stderr));
    }
    // edge.bext (HTTP/3) runs: the engine refuses nothing in it; its certificates are files
    // of the machine it is written for (/etc/bext/certs), the only findings here.
    let edge = bext(&["check", "--format", "json", &path("edge.bext")]);
    for line in text(&edge.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["code"], "E0701", "edge.bext: {line}");
    }
    let edge = bext(&["check", "--language-only", &path("edge.bext")]);
    assert_eq!(edge.status.code(), Some(0), "{}", text(&edge.stderr));
}

#[test]
fn errors_are_rendered_like_rustc_and_exit_1() {
    let f = Scratch::new("bad.bext", BAD);
    let out = bext(&["check", f.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    let want = format!(
        "error[E0303]: undefined upstream `apq`\n --> {}:4:22\n  |\n4 |     route /* {{ proxy apq }}\n  |                      ^^^\n  = help: did you mean `app`?\n",
        f.path()
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("error[E0207]"), "{err}");
    assert!(err.contains("2 errors"), "{err}");
}

#[test]
fn json_format_prints_one_object_per_diagnostic() {
    let f = Scratch::new("bad-json.bext", BAD);
    let out = bext(&["check", "--format", "json", f.path()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let objs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objs.len(), 2, "{stdout}");
    let first = &objs[0];
    assert_eq!(first["code"], "E0303");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], f.path());
    assert_eq!(first["line"], 4);
    assert_eq!(first["column"], 22);
    assert_eq!(first["message"], "undefined upstream `apq`");
    assert_eq!(objs[1]["code"], "E0207");
    assert_eq!(objs[1]["line"], 5);
    assert_eq!(objs[1]["column"], 26);
}

#[test]
fn warnings_do_not_fail_the_check() {
    let f = Scratch::new(
        "warn.bext",
        "listen :8080\nupstream app { server 127.0.0.1:9000 }\nupstream spare { server 127.0.0.1:9001 }\nsite * { route /* { proxy app } }\n",
    );
    let out = bext(&["check", f.path()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("(1 warning)"));
    assert!(text(&out.stderr).contains("warning[W0101]: upstream `spare` is never used"));
    let out = bext(&["check", "--format", "json", f.path()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).expect("json");
    assert_eq!(v["severity"], "warning");
}

#[test]
fn dump_prints_the_ir_as_json() {
    let p = examples()
        .into_iter()
        .find(|p| p.ends_with("quickstart.bext"))
        .expect("quickstart");
    let out = bext(&["check", "--dump", p.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0));
    let ir: bext_ir::Config = serde_json::from_slice(&out.stdout).expect("IR JSON on stdout");
    assert_eq!(ir.listeners[0].addr, "0.0.0.0:8080");
    assert_eq!(ir.sites[0].routes.len(), 2);
    assert_eq!(ir.sites[0].routes[1].at.line, 15);
    assert!(text(&out.stderr).starts_with("ok: "));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let out = bext(&["check", "/nonexistent/dir/x.bext"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/dir/x.bext"));
    assert_eq!(bext(&["check"]).status.code(), Some(2));
    assert_eq!(
        bext(&["check", "--format", "yaml", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(bext(&["fmt", "/nonexistent/x.bext"]).status.code(), Some(2));
}

#[test]
fn fmt_prints_checks_and_writes_the_canonical_layout() {
    let messy = "site   * {\n  route /* {   proxy app ;respond 200 }\n\n\n\n}\n";
    let canonical = "site * {\n    route /* { proxy app; respond 200 }\n}\n";
    let f = Scratch::new("messy.bext", messy);
    let out = bext(&["fmt", f.path()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), canonical);
    let out = bext(&["fmt", "--check", f.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not formatted"));
    assert_eq!(bext(&["fmt", "-w", f.path()]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&f.0).expect("read"), canonical);
    assert_eq!(bext(&["fmt", "--check", f.path()]).status.code(), Some(0));
    for p in examples() {
        let out = bext(&["fmt", "--check", p.to_str().expect("path")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} is not formatted",
            p.display()
        );
    }
}

#[test]
fn fmt_reports_syntax_errors_and_exits_1() {
    let f = Scratch::new("broken.bext", "site * {\n    route /* { proxy app }\n");
    let out = bext(&["fmt", f.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error[E0001]"),
        "{}",
        text(&out.stderr)
    );
}

/// A proxy-wasm module in the text format (bext reads both forms): `extra` goes inside the
/// module, `configure` is what `proxy_on_configure` answers.
fn plugin_module(extra: &str, configure: u8) -> String {
    format!(
        r#"(module {extra}
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const {configure}))"#
    )
}

/// `bext check` loads each plugin as `bext run` would and reports what is wrong with it, each
/// with its code at the `plugin` directive.
#[test]
fn plugins_that_cannot_load_are_reported_with_their_code() {
    let good = Scratch::new("good-plugin.wat", &plugin_module("", 1));
    let table: Vec<(&str, String, &str, &str)> = vec![
        ("missing", String::new(), "E0801", "cannot read plugin"),
        (
            "text",
            "not a module".into(),
            "E0802",
            "not a WebAssembly module",
        ),
        (
            "plain",
            "(module (func (export \"f\")))".into(),
            "E0802",
            "not a proxy-wasm module",
        ),
        (
            "imports",
            plugin_module(
                r#"(import "env" "envoy_only" (func (param i32) (result i32)))"#,
                1,
            ),
            "E0803",
            "env::envoy_only",
        ),
        (
            "refuses",
            plugin_module("", 0),
            "E0805",
            "refused the plugin configuration",
        ),
    ];
    for (name, module, code, msg) in table {
        let file = Scratch::new(&format!("{name}.wat"), &module);
        if module.is_empty() {
            std::fs::remove_file(file.path()).expect("remove");
        }
        let conf = Scratch::new(
            &format!("{name}.bext"),
            &format!(
                "listen 127.0.0.1:0\nsite a.test {{\n    route /* {{\n        plugin \"{}\"\n        plugin \"{}\"\n        respond 200 \"ok\"\n    }}\n}}\n",
                good.path(),
                file.path()
            ),
        );
        let out = bext(&["check", conf.path()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(&format!("error[{code}]: ")), "{name}: {err}");
        assert!(err.contains(msg), "{name}: {err}");
        // Only the bad plugin is reported (at its line); the engine runs plugins.
        assert_eq!(err.matches("error[E08").count(), 1, "{name}: {err}");
        assert!(
            err.contains(&format!("{}:5:9", conf.path())),
            "{name}: {err}"
        );
        assert_eq!(err.matches("error[E0501]").count(), 0, "{name}: {err}");
    }
    let conf = Scratch::new(
        "settings.bext",
        &format!(
            "listen 127.0.0.1:0\nsite a.test {{\n    route /* {{\n        plugin \"{}\" {{ budget 20s }}\n        respond 200 \"ok\"\n    }}\n}}\n",
            good.path()
        ),
    );
    let out = bext(&["check", "--format", "json", conf.path()]);
    let json = text(&out.stdout);
    assert!(
        json.lines()
            .any(|l| l.contains("\"E0804\"") && l.contains("budget")),
        "{json}"
    );
}

/// canary.bext names its plugin relative to its own folder, where no module is built: `bext
/// check` and `bext run` report the missing file at the `plugin` line (E0801), not an E0501.
#[test]
fn the_canary_example_reports_its_unbuilt_plugin_file() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/canary.bext");
    let file = file.to_str().expect("path");
    for args in [vec!["check", file], vec!["run", file]] {
        let out = bext(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("error[E0801]: cannot read plugin"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("E0501"), "{args:?}: {err}");
    }
}
