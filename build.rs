// Records the git commit the binary was built from (for the results index), with "-dirty" when
// the working tree had uncommitted changes; "unknown" outside git. Reruns whenever the sources
// or the checked-out commit change, so the label cannot go stale.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RRAM_GIT_COMMIT={commit}");
    for path in [
        ".git/HEAD",
        ".git/refs",
        ".git/index",
        "src",
        "Cargo.toml",
        "presets",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
