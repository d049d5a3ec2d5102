//! The paths users take: a coherent answer from every catalog LLM, multi-turn
//! chat over piped stdin (with the cached prefix reused), seeds, stop strings
//! and `tokenize --ids`.

mod common;
use common::{llmos, model, stderr, stdout};
use std::io::Write;
use std::process::Stdio;

fn run(model: &std::path::Path, args: &[&str]) -> (String, String) {
    let o = llmos()
        .arg("run")
        .arg("-m")
        .arg(model)
        .args(["-t", "2"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "llmos run {args:?} failed: {}",
        stderr(&o)
    );
    (stdout(&o), stderr(&o))
}

#[test]
fn every_catalog_llm_answers_coherently() {
    // Chat models through their own template; the gemma3 base model raw.
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "smollm2-135m-instruct",
            &["--raw", "The capital of France is"],
            "Paris",
        ),
        (
            "qwen2.5-coder-0.5b-instruct",
            &["What is the capital of France? Answer in one word."],
            "Paris",
        ),
        (
            "qwen2.5-coder-1.5b-instruct",
            &["What is the capital of France? Answer in one word."],
            "Paris",
        ),
        (
            "gemma3-270m",
            &["--raw", "The three primary colors are"],
            "red",
        ),
    ];
    for (name, args, want) in cases {
        let Some(m) = model(name) else { continue };
        let mut a = vec!["--temp", "0", "-n", "24"];
        a.extend_from_slice(args);
        let (out, _) = run(&m, &a);
        eprintln!("{name}: {out:?}");
        assert!(out.contains(want), "{name}: expected {want:?} in {out:?}");
    }
}

#[test]
fn piped_chat_remembers_earlier_turns_and_reuses_the_cache() {
    let Some(m) = model("qwen2.5-coder-0.5b-instruct") else {
        return;
    };
    let mut child = llmos()
        .args(["chat", "-v", "--temp", "0", "-n", "40", "-t", "2", "-m"])
        .arg(&m)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"My name is Ada.\nWhat is my name?\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let second = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        second.contains("Ada"),
        "second turn should recall the name: {out:?}"
    );
    // The second turn's prompt starts with the whole first turn, already cached.
    let err = stderr(&o);
    let cached: Vec<usize> = err
        .lines()
        .filter_map(|l| l.split(" tokens (").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(cached.len(), 2, "{err}");
    assert_eq!(cached[0], 0);
    assert!(
        cached[1] > 20,
        "second turn reused only {} tokens: {err}",
        cached[1]
    );
}

#[test]
fn same_seed_same_text_and_stop_strings_cut() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    let args = [
        "--raw",
        "--temp",
        "1.0",
        "--seed",
        "42",
        "-n",
        "24",
        "Once upon a time",
    ];
    let (a, _) = run(&m, &args);
    let (b, _) = run(&m, &args);
    assert_eq!(a, b, "same seed must give the same text");
    let (c, _) = run(
        &m,
        &[
            "--raw",
            "--temp",
            "1.0",
            "--seed",
            "43",
            "-n",
            "24",
            "Once upon a time",
        ],
    );
    assert_ne!(a, c, "a different seed should change the text");

    let (full, _) = run(
        &m,
        &[
            "--raw",
            "--temp",
            "0",
            "-n",
            "30",
            "The capital of France is",
        ],
    );
    assert!(full.contains("Paris."), "{full:?}");
    let (cut, _) = run(
        &m,
        &[
            "--raw",
            "--temp",
            "0",
            "-n",
            "30",
            "--stop",
            ".",
            "The capital of France is",
        ],
    );
    assert_eq!(
        cut.trim_end(),
        full.split('.').next().unwrap(),
        "text up to the stop string, without it"
    );
}

#[test]
fn tokenize_ids_prints_one_json_array() {
    let Some(m) = model("gemma3-270m") else {
        return;
    };
    let o = llmos()
        .args(["tokenize", "--ids", "-m"])
        .arg(&m)
        .arg("Hello <start_of_turn>")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1);
    let plain: Vec<u32> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(plain[0], 2, "gemma adds BOS: {plain:?}");
    let o = llmos()
        .args(["tokenize", "--ids", "--special", "-m"])
        .arg(&m)
        .arg("Hello <start_of_turn>")
        .output()
        .unwrap();
    let special: Vec<u32> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        special.len() < plain.len(),
        "--special reads <start_of_turn> as one token: {special:?} vs {plain:?}"
    );
}

#[test]
fn template_override_by_name_and_unknown_name_is_an_error() {
    let Some(m) = model("smollm2-135m-instruct") else {
        return;
    };
    // SmolLM2 speaks ChatML, so the built-in chatml template must work as well as its own.
    let (out, _) = run(
        &m,
        &[
            "--template",
            "chatml",
            "--temp",
            "0",
            "-n",
            "16",
            "What is the capital of France?",
        ],
    );
    assert!(!out.trim().is_empty(), "no answer with --template chatml");
    let o = llmos()
        .args(["run", "--template", "no-such-template", "-n", "4", "-m"])
        .arg(&m)
        .arg("hi")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("no-such-template") && err.contains("chatml"),
        "{err}"
    );
}
