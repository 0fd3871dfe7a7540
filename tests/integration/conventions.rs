//! CLI conventions: shell completions and `--version`. Neither needs root.

use std::process::Command;

use ctrace_tests::{ctrace_bin, run, unavailable};

fn bin() -> Option<std::path::PathBuf> {
    let bin = ctrace_bin();
    if bin.is_none() {
        unavailable("no ctrace binary: set CTRACE_BIN or run `cargo xtask test`");
    }
    bin
}

#[test]
fn completions_bash_mention_the_subcommands() {
    let Some(bin) = bin() else { return };
    let out = run(Command::new(&bin).args(["completions", "bash"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.trim().is_empty(), "empty completion script");
    assert!(text.contains("watch"), "{text}");
    assert!(
        !text.contains(" man "),
        "the hidden `man` is offered: {text}"
    );
}

/// `ctrace 0.1.0 (<git revision>, ebpf <12 hex digits>)`; a CI build embeds its eBPF object.
#[test]
fn version_names_revision_and_ebpf_object() {
    let Some(bin) = bin() else { return };
    let out = run(Command::new(&bin).arg("--version"));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let parsed = line
        .strip_prefix("ctrace ")
        .and_then(|rest| rest.split_once(" ("))
        .and_then(|(semver, rest)| {
            let (rev, id) = rest.strip_suffix(')')?.split_once(", ebpf ")?;
            Some((semver, rev, id))
        });
    let Some((semver, rev, id)) = parsed else {
        panic!("unexpected --version: {line:?}");
    };
    let numbers: Vec<&str> = semver.split('.').collect();
    assert!(
        numbers.len() == 3 && numbers.iter().all(|n| n.parse::<u64>().is_ok()),
        "{line}"
    );
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    assert!(rev == "unknown" || (rev.len() >= 7 && hex(rev)), "{line}");
    assert!(id == "none" || (id.len() == 12 && hex(id)), "{line}");
    if std::env::var("CTRACE_REQUIRE_INTEGRATION").is_ok_and(|v| v == "1") {
        assert_ne!(
            id, "none",
            "the binary was built without its eBPF object: {line}"
        );
    }
    // Subcommands print the same version (after their own name, `ctrace-ps`).
    let sub = run(Command::new(&bin).args(["ps", "--version"]));
    let sub = String::from_utf8_lossy(&sub.stdout).trim().to_owned();
    assert_eq!(
        sub.strip_prefix("ctrace-ps "),
        line.strip_prefix("ctrace "),
        "{sub}"
    );
}
