//! The .bext front end on arbitrary input: parsing, checking, lowering, rendering every
//! diagnostic and formatting must never panic, and formatting must be stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let opts = bext_dsl::Options {
        follow_includes: false,
    };
    match bext_dsl::compile_with("fuzz.bext", src, &opts) {
        Ok(c) => {
            let _ = c.render_warnings();
        }
        Err(f) => {
            let _ = f.render_human();
            let _ = f.render_json();
        }
    }
    if let Ok(formatted) = bext_dsl::format_str("fuzz.bext", src) {
        let again = bext_dsl::format_str("fuzz.bext", &formatted).expect("formatted output parses");
        assert_eq!(again, formatted, "fmt is idempotent");
    }
});
