//! `files`: confinement to the roots (.., absolute paths, symlinks), reads, greps, and writes that ask.

use std::path::Path;

use llmos_tools::files::Files;
use llmos_tools::{SideEffect, Tool, ToolOutput};
use serde_json::{json, Value};

fn call(f: &Files, op: &str, path: &str, extra: Value) -> ToolOutput {
    let mut a = json!({"operation": op, "path": path, "pattern": null, "start_line": null, "end_line": null, "content": null, "append": null});
    if let (Some(m), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    f.call(a)
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    for d in [&root, &root.join("sub"), &outside] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    let w = |p: &Path, s: &str| std::fs::write(p, s).unwrap_or_else(|e| panic!("{e}"));
    w(&root.join("a.txt"), "one\ntwo\nthree\nfour\n");
    w(&root.join("sub/b.md"), "# Title\nneedle here\n");
    w(&outside.join("secret.txt"), "SECRET needle\n");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link-out"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&outside, root.join("dir-out")).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        _tmp: tmp,
        root,
        outside,
    }
}

#[test]
fn reads_list_and_line_ranges() {
    let fx = fixture();
    let f = Files::new(&[&fx.root]).unwrap_or_else(|e| panic!("{e}"));
    let out = call(&f, "list", ".", json!({}));
    assert!(
        !out.is_error
            && out.untrusted
            && out.content.contains("a.txt (19 bytes)")
            && out.content.contains("sub/"),
        "{}",
        out.content
    );
    let out = call(&f, "read", "a.txt", json!({"start_line": 2, "end_line": 3}));
    assert!(
        out.content.contains("(lines 2-3 of 4)")
            && out.content.contains("2  two")
            && !out.content.contains("four"),
        "{}",
        out.content
    );
    let out = call(&f, "read", "a.txt", json!({"start_line": 9}));
    assert!(
        out.is_error && out.content.contains("has 4 lines"),
        "{}",
        out.content
    );
}

#[test]
fn dotdot_absolute_and_symlink_escapes_are_refused() {
    let fx = fixture();
    let f = Files::new(&[&fx.root]).unwrap_or_else(|e| panic!("{e}"));
    let secret = fx.outside.join("secret.txt").display().to_string();
    for (op, path) in [
        ("read", "../outside/secret.txt"),
        ("read", secret.as_str()),
        ("read", "link-out"),
        ("list", "dir-out"),
        ("read", "dir-out/secret.txt"),
        ("read", "/etc/passwd"),
        ("grep", "dir-out"),
    ] {
        let out = call(
            &f,
            op,
            path,
            json!({"pattern": if op == "grep" { json!("needle") } else { json!(null) }}),
        );
        assert!(
            out.is_error && out.content.contains("outside the allowed roots"),
            "{op} {path}: {}",
            out.content
        );
        assert!(!out.content.contains("SECRET"));
    }
}

#[test]
fn grep_finds_matches_and_does_not_follow_symlinks_out() {
    let fx = fixture();
    let f = Files::new(&[&fx.root]).unwrap_or_else(|e| panic!("{e}"));
    let out = call(&f, "grep", ".", json!({"pattern": "need(le)?"}));
    assert!(
        !out.is_error && out.content.contains("sub/b.md:2: needle here"),
        "{}",
        out.content
    );
    assert!(
        !out.content.contains("SECRET"),
        "grep followed a symlink out of the root: {}",
        out.content
    );
    let out = call(&f, "grep", ".", json!({"pattern": "("}));
    assert!(
        out.is_error && out.content.contains("bad regex"),
        "{}",
        out.content
    );
}

#[test]
fn writes_need_approval_then_apply() {
    let fx = fixture();
    let f = Files::new(&[&fx.root]).unwrap_or_else(|e| panic!("{e}"));
    let out = call(&f, "write", "sub/new.txt", json!({"content": "hello"}));
    assert!(
        !out.is_error && out.content.starts_with("needs approval"),
        "{}",
        out.content
    );
    assert!(
        !fx.root.join("sub/new.txt").exists(),
        "nothing may be written before approval"
    );
    let Some(SideEffect::WriteProposed(req)) = out.side_effects.first() else {
        panic!("{out:?}")
    };
    let done = f.apply(req);
    assert!(!done.is_error, "{}", done.content);
    assert_eq!(
        std::fs::read_to_string(fx.root.join("sub/new.txt"))
            .ok()
            .as_deref(),
        Some("hello")
    );
    // Through a symlink, or next to the root: refused before any approval is asked.
    for p in ["link-out", "dir-out/x.txt", "../outside/x.txt"] {
        let out = call(&f, "write", p, json!({"content": "x"}));
        assert!(
            out.is_error && out.content.contains("outside the allowed roots"),
            "{p}: {}",
            out.content
        );
    }
    assert_eq!(
        std::fs::read_to_string(fx.outside.join("secret.txt"))
            .ok()
            .as_deref(),
        Some("SECRET needle\n")
    );
}

#[test]
fn a_write_policy_allows_without_asking() {
    let fx = fixture();
    let f = Files::new(&[&fx.root])
        .and_then(|f| f.allow_writes_under(&[fx.root.join("sub")]))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = call(
        &f,
        "write",
        "sub/log.txt",
        json!({"content": "a", "append": true}),
    );
    assert!(
        !out.is_error && matches!(out.side_effects.first(), Some(SideEffect::FilesWritten(_))),
        "{out:?}"
    );
    let out = call(&f, "write", "a.txt", json!({"content": "x"}));
    assert!(
        out.content.starts_with("needs approval"),
        "outside the allowed dir it still asks: {}",
        out.content
    );
}

#[test]
fn argument_errors_say_what_to_do() {
    let fx = fixture();
    let f = Files::new(&[&fx.root]).unwrap_or_else(|e| panic!("{e}"));
    let out = call(&f, "delete", ".", json!({}));
    assert!(
        out.is_error && out.content.contains("list, read, grep, write"),
        "{}",
        out.content
    );
    // Keys an operation does not use: neutral values (what the grammar
    // makes small models fill in) are ignored; others are ignored with a note.
    let out = call(
        &f,
        "list",
        ".",
        json!({"pattern": "", "append": false, "start_line": 0}),
    );
    assert!(
        !out.is_error && !out.content.contains("ignored"),
        "{}",
        out.content
    );
    let out = call(&f, "list", ".", json!({"pattern": "x"}));
    assert!(
        !out.is_error
            && out
                .content
                .contains("ignored 'pattern' (not used by operation 'list')"),
        "{}",
        out.content
    );
    let out = call(
        &f,
        "read",
        "a.txt",
        json!({"append": false, "start_line": 0, "end_line": 0}),
    );
    assert!(!out.is_error, "{}", out.content);
    let out = call(&f, "grep", ".", json!({}));
    assert!(
        out.is_error && out.content.contains("needs 'pattern'"),
        "{}",
        out.content
    );
    assert!(Files::new(&["/no/such/dir"]).is_err());
}
