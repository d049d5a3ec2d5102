//! `llmos bench`: the command runs both tests, prints them in each format,
//! and rejects bad sizes. Correctness only: no assertion is about speed.

mod common;
use common::{llmos, model, stderr, stdout};

#[test]
fn json_lines_one_object_per_test() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    let o = llmos()
        .args([
            "bench", "-p", "16", "-n", "8", "-r", "2", "-t", "2", "--json", "-m",
        ])
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "expected 2 JSON lines: {out}");
    for (line, test) in lines.iter().zip(["pp16", "tg8"]) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["test"], test, "{line}");
        assert!(v["tokens_per_second"].as_f64().unwrap() > 0.0, "{line}");
        assert!(v["stddev"].as_f64().unwrap() >= 0.0, "{line}");
        assert_eq!(v["samples_ts"].as_array().unwrap().len(), 2, "{line}");
        assert_eq!(v["reps"], 2, "{line}");
        assert_eq!(v["threads"], 2, "{line}");
        assert_eq!(v["model"], "smollm2-135m-instruct.gguf", "{line}");
        assert!(v["simd"].is_string(), "{line}");
        assert!(v.get("peak_rss_bytes").is_some(), "{line}");
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        (first["n_prompt"].as_u64(), first["n_gen"].as_u64()),
        (Some(16), Some(0))
    );
    let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        (second["n_prompt"].as_u64(), second["n_gen"].as_u64()),
        (Some(0), Some(8))
    );
}

#[test]
fn table_lists_both_tests_and_peak_rss() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    let o = llmos()
        .args(["bench", "-p", "8", "-n", "4", "-r", "1", "-m"])
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("| model"), "{out}");
    assert!(out.contains("t/s"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("| pp8 |") || l.contains(" pp8 ")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains(" tg4 ")), "{out}");
    assert!(out.contains("peak RSS:"), "{out}");
}

#[test]
fn zero_size_skips_that_test() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    let o = llmos()
        .args(["bench", "-p", "0", "-n", "2", "-r", "1", "--json", "-m"])
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"test\":\"tg2\""), "{out}");
}

#[test]
fn zero_reps_is_an_error() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    let o = llmos()
        .args(["bench", "-p", "8", "-n", "4", "-r", "0", "-m"])
        .arg(&m)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("--reps 0"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn prompt_beyond_context_names_both_sizes() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    let o = llmos()
        .args(["bench", "-p", "1000000", "-n", "4", "-m"])
        .arg(&m)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("1000000"), "{err}");
    assert!(err.contains("n_ctx_train = 8192"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_model_is_an_error() {
    let home = std::env::temp_dir().join(format!("llmos-bench-home-{}", std::process::id()));
    let o = llmos()
        .args(["bench", "-m", "no-such-model", "-p", "8", "-n", "4"])
        .env("LLMOS_HOME", &home)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("no-such-model"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
