//! A `plugin` directive's settings: the keys of its block that bext reads itself, and the
//! plugin configuration handed to the module (`proxy_on_configure`).
//!
//! ```text
//! plugin "filter.wasm" {
//!     config   "{\"k\":\"v\"}"   # bytes handed to the plugin as its configuration, as written
//!     on_error fail               # fail (500 problem+json, default) or skip (the request goes on)
//!     budget   10ms               # wall-clock time one callback may take (default 20ms)
//!     memory   16mb               # linear memory of one instance (default 32mb)
//!     name     "x-served-by"      # any other key: the configuration becomes a JSON object of
//!     value    "bext"             #   those keys, {"name":"x-served-by","value":"bext"}
//! }
//! ```

use bext_ir::{ConfigError, Plugin};
use std::time::Duration;

/// What a failed call (a trap, an exhausted budget, a refused configuration at instantiation)
/// does to the request it happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnError {
    /// End the request with a 500 `plugin-failed` problem (the default).
    Fail,
    /// Go on as if the plugin were not there (fail open).
    Skip,
}

/// Longest budget accepted: a callback that may run for seconds holds its core's requests.
pub const MAX_BUDGET: Duration = Duration::from_secs(10);
/// Largest linear memory accepted for one instance.
pub const MAX_MEMORY: u64 = 4 << 30;
/// One WebAssembly page: the smallest memory an instance can have.
pub const PAGE: u64 = 64 << 10;

/// The settings of one `plugin` directive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Settings {
    /// The plugin configuration (`proxy_get_buffer_bytes(PluginConfiguration)`).
    pub config: Vec<u8>,
    pub on_error: OnError,
    /// Wall-clock time one callback may run before it is interrupted.
    pub budget: Duration,
    /// Bytes of linear memory one instance may have.
    pub memory: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config: Vec::new(),
            on_error: OnError::Fail,
            budget: Duration::from_millis(20),
            memory: 32 << 20,
        }
    }
}

impl Settings {
    /// The settings written in `p`'s block; an unusable value is an error at the directive.
    pub fn of(p: &Plugin) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        let mut raw: Option<&str> = None;
        let mut fields: Vec<(&str, &str)> = Vec::new();
        let err = |m: String| Err(ConfigError::new(m, &p.at));
        for (k, v) in &p.config {
            match k.as_str() {
                "config" => raw = Some(v),
                "on_error" => {
                    s.on_error = match v.as_str() {
                        "fail" => OnError::Fail,
                        "skip" => OnError::Skip,
                        _ => return err(format!("on_error is `fail` or `skip`, not `{v}`")),
                    }
                }
                "budget" => match parse_duration(v) {
                    Some(d) if !d.is_zero() && d <= MAX_BUDGET => s.budget = d,
                    _ => {
                        return err(format!(
                            "budget is a duration above zero and at most 10s (`5ms`), not `{v}`"
                        ))
                    }
                },
                "memory" => match parse_size(v) {
                    Some(n) if (PAGE..=MAX_MEMORY).contains(&n) => s.memory = n,
                    _ => {
                        return err(format!(
                            "memory is a size from 64kb to 4gb (`16mb`), not `{v}`"
                        ))
                    }
                },
                _ => fields.push((k, v)),
            }
        }
        match (raw, fields.is_empty()) {
            (Some(_), false) => {
                return err(format!(
                    "`config` and other keys ({}) cannot be mixed: write the whole configuration \
                     in `config`, or only keys",
                    fields.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                ))
            }
            (Some(r), true) => s.config = r.as_bytes().to_vec(),
            (None, false) => s.config = json_object(&fields).into_bytes(),
            (None, true) => {}
        }
        Ok(s)
    }
}

/// `{"k":"v",...}` with JSON string escapes.
fn json_object(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, k);
        out.push(':');
        json_string(&mut out, v);
    }
    out.push('}');
    out
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `500ms`, `2s`, `1m` (the language's duration units; `us` for microseconds too).
fn parse_duration(v: &str) -> Option<Duration> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = v[..digits].parse().ok()?;
    Some(match &v[digits..] {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    })
}

/// `512b`, `64kb`, `16mb`, `1gb` (powers of 1024, as in the language).
fn parse_size(v: &str) -> Option<u64> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = v[..digits].parse().ok()?;
    let unit: u64 = match v[digits..].to_ascii_lowercase().as_str() {
        "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bext_ir::Loc;

    fn plugin(kv: &[(&str, &str)]) -> Plugin {
        Plugin {
            path: "p.wasm".into(),
            config: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            at: Loc::default(),
        }
    }

    /// Block keys; then the configuration, on_error, budget (ms) and memory they give.
    type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, OnError, u64, u64);

    #[test]
    fn settings_table() {
        let ok: &[Row<'_>] = &[
            (&[], "", OnError::Fail, 20, 32 << 20),
            (
                &[("config", "raw \"x\"")],
                "raw \"x\"",
                OnError::Fail,
                20,
                32 << 20,
            ),
            (
                &[("name", "x-a"), ("value", "b\"c")],
                r#"{"name":"x-a","value":"b\"c"}"#,
                OnError::Fail,
                20,
                32 << 20,
            ),
            (
                &[("on_error", "skip"), ("budget", "5ms"), ("memory", "1mb")],
                "",
                OnError::Skip,
                5,
                1 << 20,
            ),
        ];
        for (kv, config, on_error, budget_ms, memory) in ok {
            let s = Settings::of(&plugin(kv)).unwrap();
            assert_eq!(s.config, config.as_bytes(), "{kv:?}");
            assert_eq!(s.on_error, *on_error);
            assert_eq!(s.budget, Duration::from_millis(*budget_ms));
            assert_eq!(s.memory, *memory);
        }
        let bad: &[(&[(&str, &str)], &str)] = &[
            (&[("on_error", "open")], "on_error is `fail` or `skip`"),
            (&[("budget", "0ms")], "budget is a duration"),
            (&[("budget", "11s")], "budget is a duration"),
            (&[("budget", "5")], "budget is a duration"),
            (&[("memory", "1kb")], "memory is a size"),
            (&[("memory", "5gb")], "memory is a size"),
            (&[("config", "{}"), ("k", "v")], "cannot be mixed"),
        ];
        for (kv, msg) in bad {
            let e = Settings::of(&plugin(kv)).unwrap_err();
            assert!(e.message.contains(msg), "{kv:?}: {}", e.message);
        }
    }
}
