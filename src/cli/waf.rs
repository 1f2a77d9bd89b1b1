//! `bext waf test FILE|-`: one raw HTTP request through the compiled WAF of a configuration,
//! printing every rule that fired, the target it fired on after which transformations, and the
//! anomaly score. Nothing is served; the WAF is the one `bext run` would build.

use clap::{Args, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct WafArgs {
    #[command(subcommand)]
    pub cmd: WafCmd,
}

#[derive(Subcommand)]
pub enum WafCmd {
    /// Run a raw HTTP request (a file, or `-` for standard input) through a configured WAF.
    Test(TestArgs),
}

#[derive(Args)]
pub struct TestArgs {
    /// The raw request: request line, header lines, a blank line, the body.
    pub request: PathBuf,
    /// The configuration holding the `waf` block.
    #[arg(long)]
    pub config: PathBuf,
    /// The name of the `waf` block.
    #[arg(long)]
    pub waf: String,
}

pub fn waf(a: WafArgs) -> ExitCode {
    match a.cmd {
        WafCmd::Test(t) => match test(&t) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// A raw request: method, target, version, fields and body.
type RawRequest<'a> = (String, String, String, Vec<(String, Vec<u8>)>, &'a [u8]);

/// A raw request split into its request line, fields and body (CRLF or LF line ends).
fn parse(raw: &[u8]) -> Result<RawRequest<'_>, String> {
    let head_end = memfind(raw, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| memfind(raw, b"\n\n").map(|i| (i, i + 2)))
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..head_end.0]).into_owned();
    let mut lines = head.lines();
    let line = lines.next().ok_or("the request is empty")?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("not a request line: {line:?}"));
    };
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let mut fields = Vec::new();
    for l in lines {
        let Some((n, v)) = l.split_once(':') else {
            return Err(format!("not a header line: {l:?}"));
        };
        fields.push((n.trim().to_string(), v.trim().as_bytes().to_vec()));
    }
    Ok((
        method.to_string(),
        target.to_string(),
        version,
        fields,
        &raw[head_end.1..],
    ))
}

fn memfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn test(t: &TestArgs) -> Result<ExitCode, String> {
    let compiled = bext_dsl::compile_file(&t.config).map_err(|f| f.render_human())?;
    let w = compiled
        .config
        .wafs
        .iter()
        .find(|w| w.name == t.waf)
        .ok_or_else(|| format!("no `waf {}` block in {}", t.waf, t.config.display()))?;
    let built = bext_waf::stage::build(w).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    if t.request == std::path::Path::new("-") {
        std::io::stdin().read_to_end(&mut raw)
    } else {
        std::fs::File::open(&t.request).and_then(|mut f| f.read_to_end(&mut raw))
    }
    .map_err(|e| format!("{}: {e}", t.request.display()))?;
    let (method, target, version, fields, body) = parse(&raw)?;
    let mut tx = bext_waf::Transaction::new(&built.waf);
    tx.request_line(&method, &target, &version);
    for (n, v) in &fields {
        tx.header(n, v);
    }
    tx.end_headers();
    tx.body(body);
    let action = tx.end_body();
    let v = tx.verdict();
    for m in &v.matches {
        let chain: Vec<String> = m.transforms.iter().map(|x| format!("{x:?}")).collect();
        let chain = if chain.is_empty() {
            "none".to_string()
        } else {
            chain.join(",")
        };
        println!(
            "{} phase {} {} t:{chain} {:?} ({})",
            m.rule_id, m.phase, m.target, m.value, m.file
        );
    }
    println!("score {} → {:?}", v.score, action);
    Ok(if action == bext_waf::Action::Block {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
