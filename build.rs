//! Build script: one switch for the test suite. When `VUER_RTC_REFERENCE_PYTHON` is set
//! at build time, `cfg(reference_python)` is on and `tests/text_interop.rs` runs
//! against the Python reference; otherwise those tests are ignored, with the reason.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(reference_python)");
    println!("cargo::rerun-if-env-changed=VUER_RTC_REFERENCE_PYTHON");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("VUER_RTC_REFERENCE_PYTHON").is_some_and(|p| !p.is_empty()) {
        println!("cargo::rustc-cfg=reference_python");
    }
}
