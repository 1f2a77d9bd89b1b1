//! What the host's tests and the end-to-end tests (`tests/plugins.rs`, which include this file)
//! share: building plugins/examples for wasm32-wasip1, an example's directive, and the JWTs the
//! jwt_check example reads.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Builds the examples' workspace (`manifest`) into `target` and returns the folder of the
/// built modules.
pub fn build_examples(manifest: &Path, target: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip1"])
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building plugins/examples failed (is the wasm32-wasip1 target installed? \
         `rustup target add wasm32-wasip1`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("wasm32-wasip1/release")
}

/// The `plugin` directive of example `name` built into `dir`, with `config`.
pub fn directive(dir: &Path, name: &str, config: &[(&str, &str)]) -> bext_ir::Plugin {
    bext_ir::Plugin {
        path: dir.join(format!("{name}.wasm")).display().to_string(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        at: bext_ir::Loc::default(),
    }
}

/// `{"alg":"none"}` . payload . signature, base64url.
pub fn token(payload: &str) -> String {
    fn b64(s: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for c in s.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
            for i in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
    format!(
        "{}.{}.c2ln",
        b64(br#"{"alg":"none"}"#),
        b64(payload.as_bytes())
    )
}
