//! Property tests: for generated configurations written in arbitrary (valid) layouts,
//! `fmt` is idempotent, and the formatted text lowers to the same IR (or the same diagnostics)
//! as the original. `Loc` compares equal by design, so layout changes do not count.

use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// A directive as the generator builds it: name, arguments, optional block.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Node>>,
}

fn node(name: &str, args: &[&str], block: Option<Vec<Node>>) -> Node {
    Node {
        name: name.to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
        block,
    }
}

/// Choices that drive a config's content.
#[derive(Debug, Clone)]
struct Shape {
    upstreams: Vec<(u8, u8, u8)>,  // (servers, balance, options)
    routes: Vec<(u8, u8, u8, u8)>, // (path kind, method, action, extras)
    global: u8,
    tls: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        prop::collection::vec((1u8..4, 0u8..6, any::<u8>()), 1..4),
        prop::collection::vec((any::<u8>(), 0u8..4, 0u8..4, any::<u8>()), 1..8),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(upstreams, routes, global, tls)| Shape {
            upstreams,
            routes,
            global,
            tls,
        })
}

fn build(s: &Shape) -> Vec<Node> {
    let mut top = vec![];
    if s.global & 1 == 1 {
        let mut g = vec![node(
            "workers",
            &[if s.global & 2 == 2 { "auto" } else { "4" }],
            None,
        )];
        if s.global & 4 == 4 {
            g.push(node(
                "limits",
                &[],
                Some(vec![
                    node("header_bytes", &["32kb"], None),
                    node("body", &["1mb"], None),
                ]),
            ));
        }
        if s.global & 8 == 8 {
            g.push(node(
                "timeouts",
                &[],
                Some(vec![node("idle", &["30s"], None)]),
            ));
        }
        if s.global & 16 == 16 {
            g.push(node(
                "access_log",
                &["\"/var/log/bext.log\"", "combined"],
                None,
            ));
        }
        top.push(node("global", &[], Some(g)));
    }
    top.push(node("listen", &["0.0.0.0:8080"], None));
    if s.tls {
        top.push(node("listen", &["[::]:8443", "tls"], None));
        // The tls block sits among the arguments: append it by hand below.
        if let Some(l) = top.last_mut() {
            l.block = Some(vec![node("cert", &["\"a.pem\"", "key", "\"a.key\""], None)]);
            l.args.pop();
        }
    }
    let names: Vec<String> = (0..s.upstreams.len()).map(|i| format!("up{i}")).collect();
    for (i, (servers, balance, opts)) in s.upstreams.iter().enumerate() {
        let mut b = vec![];
        for k in 0..*servers {
            let addr = format!("10.0.{i}.{k}:80");
            if opts & 1 == 1 {
                b.push(node("server", &[&addr, "weight", "2"], None));
            } else {
                b.push(node("server", &[&addr], None));
            }
        }
        let bal = [
            "round_robin",
            "least_conn",
            "p2c",
            "random",
            "hash client_ip",
            "hash header \"x-user\"",
        ][*balance as usize];
        let bal: Vec<&str> = bal.split(' ').collect();
        b.push(node("balance", &bal, None));
        if opts & 2 == 2 {
            b.push(node(
                "health",
                &["http", "\"/healthz\"", "every", "2s", "timeout", "500ms"],
                None,
            ));
        }
        if opts & 4 == 4 {
            b.push(node(
                "retry",
                &["2", "on", "connect_error", "502", "budget", "20%"],
                None,
            ));
        }
        if opts & 8 == 8 {
            b.push(node(
                "timeouts",
                &[],
                Some(vec![
                    node("connect", &["1s"], None),
                    node("response", &["30s"], None),
                ]),
            ));
        }
        top.push(node("upstream", &[&names[i]], Some(b)));
    }
    let mut routes = vec![];
    for (j, (path, method, action, extras)) in s.routes.iter().enumerate() {
        let p = match path % 4 {
            0 => vec!["=".to_string(), format!("/exact{}", path / 4)],
            1 => vec![format!("/p{}/*", path / 4)],
            2 => vec!["~".to_string(), format!("'^/r{}/[0-9]+$'", path / 4)],
            _ => vec!["/*".to_string()],
        };
        let mut b = vec![];
        match method {
            1 => b.push(node("method", &["GET"], None)),
            2 => b.push(node("method", &["POST", "PUT"], None)),
            3 => b.push(node("header", &["x-canary", "=", "\"1\""], None)),
            _ => {}
        }
        if extras & 1 == 1 {
            b.push(node(
                "response_header",
                &["set", "x-route", &format!("\"r{j}\"")],
                None,
            ));
        }
        if extras & 2 == 2 {
            b.push(node("compress", &["zstd", "gzip"], None));
        }
        if extras & 4 == 4 {
            b.push(node(
                "cache",
                &[],
                Some(vec![
                    node("ttl", &["10m"], None),
                    node("max", &["64mb"], None),
                ]),
            ));
        }
        if extras & 8 == 8 {
            b.push(node("rate_limit", &["100/s", "burst", "50"], None));
        }
        match action {
            0 | 1 => b.push(node(
                "proxy",
                &[&names[(*action as usize + j) % names.len()]],
                None,
            )),
            2 => b.push(node("respond", &["200", "\"ok\\n\""], None)),
            _ => b.push(node(
                "static",
                &["\"/srv/www\"", "index", "index.html"],
                None,
            )),
        }
        let mut n = node("route", &[], Some(b));
        n.args = p;
        routes.push(n);
    }
    top.push(node(
        "site",
        &["example.com", "*.example.org"],
        Some(routes),
    ));
    top
}

/// Writes nodes in a layout picked by `choices`.
fn render(nodes: &[Node], depth: usize, c: &mut impl Iterator<Item = u8>, out: &mut String) {
    for n in nodes {
        let k = c.next().unwrap_or(0);
        if k % 7 == 1 {
            out.push_str("# a comment line\n");
        }
        out.push_str(&match k % 3 {
            0 => "    ".repeat(depth),
            1 => "\t".repeat(depth),
            _ => " ".repeat(depth * 2 + 1),
        });
        out.push_str(&n.name);
        for (i, a) in n.args.iter().enumerate() {
            // Commas and line continuations are only allowed between arguments.
            out.push_str(match c.next().unwrap_or(0) % 6 {
                1 => "   ",
                2 if i > 0 => ", ",
                3 if i > 0 => " \\\n        ",
                _ => " ",
            });
            out.push_str(a);
        }
        if let Some(b) = &n.block {
            let one_line = c.next().unwrap_or(0) % 2 == 1 && !has_block(b);
            if b.is_empty() {
                out.push_str(" {}");
            } else if one_line {
                out.push_str(" { ");
                let mut inner = String::new();
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        inner.push_str(if c.next().unwrap_or(0) % 2 == 1 {
                            "; "
                        } else {
                            " ;  "
                        });
                    }
                    inner.push_str(&flat(x));
                }
                out.push_str(&inner);
                out.push_str(" }");
            } else {
                out.push_str(" {\n");
                render(b, depth + 1, c, out);
                out.push_str(&"    ".repeat(depth));
                out.push('}');
            }
            if n.name == "listen" {
                out.push_str(" http3");
            }
        }
        out.push_str(match c.next().unwrap_or(0) % 5 {
            0 => "\n\n",
            1 => "  # trailing\n",
            2 => ";\n",
            3 => "\n\n\n",
            _ => "\n",
        });
    }
}

/// A directive on one line, without terminator.
fn flat(n: &Node) -> String {
    let mut s = n.name.clone();
    for a in &n.args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

fn has_block(b: &[Node]) -> bool {
    b.iter().any(|n| n.block.is_some())
}

fn outcome(src: &str) -> Result<bext_ir::Config, Vec<&'static str>> {
    bext_dsl::compile_str("gen.bext", src)
        .map(|c| c.config)
        .map_err(|f| f.diagnostics().iter().map(|d| d.code).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fmt_is_idempotent_and_preserves_the_ir(s in shape(), layout in prop::collection::vec(any::<u8>(), 32..512)) {
        let mut src = String::new();
        let mut choices = layout.into_iter().cycle();
        render(&build(&s), 0, &mut choices, &mut src);
        let once = bext_dsl::format_str("gen.bext", &src).expect("generated configs parse");
        let twice = bext_dsl::format_str("gen.bext", &once).expect("formatted configs parse");
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(outcome(&once), outcome(&src));
    }
}

#[test]
fn generated_configs_mostly_compile() {
    // Guards the generator: a property over configs that all fail would test little.
    let mut ok = 0;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..100 {
        let s = shape().new_tree(&mut runner).expect("tree").current();
        let mut src = String::new();
        render(&build(&s), 0, &mut std::iter::repeat(4u8), &mut src);
        if outcome(&src).is_ok() {
            ok += 1;
        }
    }
    assert!(ok >= 30, "only {ok} of 100 generated configs compile");
}
