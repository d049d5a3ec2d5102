//! Grammar behaviour driven by tokenized text (no forward passes), with
//! Qwen2.5's tokenizer: errors, auto mode's trigger, mask timings.

mod common;

use llmos_grammar::{Constraint, ConstraintSpec, GrammarError, GrammarVocab, ToolChoice, ToolDef};
use serde_json::json;
use std::time::Instant;

fn qwen() -> Option<(llmos_text::Tokenizer, GrammarVocab)> {
    let p = common::model_path("qwen2.5-coder-0.5b-instruct")?;
    let f = llmos_gguf::GgufFile::open(&p).expect("open");
    let tok = llmos_text::Tokenizer::from_gguf(&f).expect("tokenizer");
    let vocab = GrammarVocab::new(&tok).expect("vocab");
    Some((tok, vocab))
}

fn tool(name: &str) -> ToolDef {
    ToolDef {
        name: name.into(),
        description: None,
        parameters: Some(
            json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
        ),
        strict: true,
    }
}

fn allows(c: &mut Constraint, tok: &llmos_text::Tokenizer, id: u32) -> bool {
    let mut l = vec![0.0f32; tok.vocab_size()];
    c.mask_logits(&mut l).expect("mask");
    l[id as usize].is_finite()
}

fn feed(c: &mut Constraint, tok: &llmos_text::Tokenizer, text: &str) {
    for t in tok.encode(text, false, true) {
        c.commit(t)
            .unwrap_or_else(|e| panic!("{text:?}: token {t} rejected: {e}"));
    }
}

#[test]
fn bad_specs_are_clear_errors() {
    let Some((_, vocab)) = qwen() else { return };
    let bad = ConstraintSpec::JsonSchema {
        schema: json!({"type": "strin"}),
        strict: true,
    };
    let e = Constraint::new(&vocab, &bad).expect_err("bad type");
    assert!(matches!(e, GrammarError::BadSpec { .. }), "{e}");
    eprintln!("bad schema: {e}");
    let bad = ConstraintSpec::JsonSchema {
        schema: json!([1]),
        strict: false,
    };
    assert!(Constraint::new(&vocab, &bad).is_err());
    let named = ConstraintSpec::ToolCalls {
        tools: vec![tool("a")],
        choice: ToolChoice::Named("b".into()),
        parallel: false,
    };
    assert!(matches!(
        Constraint::new(&vocab, &named),
        Err(GrammarError::UnknownTool { .. })
    ));
    let none = ConstraintSpec::ToolCalls {
        tools: vec![],
        choice: ToolChoice::Required,
        parallel: false,
    };
    assert!(matches!(
        Constraint::new(&vocab, &none),
        Err(GrammarError::NoTools { .. })
    ));
    let mut c = Constraint::new(&vocab, &ConstraintSpec::JsonObject).expect("ok");
    assert!(matches!(
        c.mask_logits(&mut [0.0; 10]),
        Err(GrammarError::LogitsTooShort { .. })
    ));
}

#[test]
fn auto_allows_text_then_forces_a_valid_block() {
    let Some((tok, vocab)) = qwen() else { return };
    let spec = ConstraintSpec::ToolCalls {
        tools: vec![tool("search"), tool("open")],
        choice: ToolChoice::Auto,
        parallel: false,
    };
    eprintln!("{}", spec.to_lark(false).expect("lark"));
    let eos = tok.eos().expect("eos");
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let hello = tok.encode("Hello", false, false)[0];
    assert!(allows(&mut c, &tok, hello), "free text refused");
    feed(&mut c, &tok, "I will search for that. ");
    assert!(allows(&mut c, &tok, eos), "plain text must be able to end");
    let tag = tok.token_id("<tool_call>").expect("tag");
    assert!(allows(&mut c, &tok, tag));
    c.commit(tag).expect("tag");
    // Inside the block: no free text, no EOS.
    assert!(!allows(&mut c, &tok, hello), "free text after <tool_call>");
    assert!(!allows(&mut c, &tok, eos), "EOS inside a tool call");
    feed(&mut c, &tok, "\n{\"name\": \"");
    let x = tok.encode("x", false, false)[0];
    assert!(!allows(&mut c, &tok, x), "a name that is no tool's");
    feed(
        &mut c,
        &tok,
        "open\", \"arguments\": {\"q\": \"rust\"}}\n</tool_call>",
    );
    assert!(c.is_finished() || allows(&mut c, &tok, eos));

    // A bare JSON call of a tool is held to its schema once it names the
    // tool; its arguments take no keys the schema does not list.
    let comma = tok.encode(",", false, false)[0];
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    feed(
        &mut c,
        &tok,
        "{\"name\": \"search\", \"arguments\": {\"q\": \"a\"",
    );
    assert!(
        !allows(&mut c, &tok, comma),
        "an argument the schema does not list"
    );
    feed(&mut c, &tok, "}}");
    assert!(allows(&mut c, &tok, eos));
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    feed(&mut c, &tok, "{\"name\": \"search\", \"arguments\": {\"");
    let z = tok.encode("z", false, false)[0];
    assert!(
        !allows(&mut c, &tok, z),
        "an argument the schema does not list"
    );

    // So is one in a Markdown code block (how Qwen2.5-Coder writes calls).
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    feed(
        &mut c,
        &tok,
        "```json\n{\n  \"name\": \"search\",\n  \"arguments\": {\"q\": \"a\"",
    );
    assert!(
        !allows(&mut c, &tok, comma),
        "an argument the schema does not list"
    );
    feed(&mut c, &tok, "}\n}\n```");
    assert!(allows(&mut c, &tok, eos));

    // Other JSON, and calls of functions that are not offered, stay text
    // (as in llama.cpp): the grammar does not turn them into calls.
    for text in [
        "{\"answer\": 42}",
        "{\"name\": \"searchx\", \"arguments\": {\"zzz\": 1}}",
        "```json\n{\n  \"name\": \"get_day_of_week\",\n  \"arguments\": {}\n}\n```",
        "```python\nprint(1)\n```\nThat prints 1.",
    ] {
        let mut c = Constraint::new(&vocab, &spec).expect("compile");
        feed(&mut c, &tok, text);
        assert!(allows(&mut c, &tok, eos), "{text}");
    }

    // The trigger spelled in small tokens works the same way.
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    for piece in ["<", "tool", "_call", ">"] {
        for t in tok.encode(piece, false, false) {
            c.commit(t).expect("piece");
        }
    }
    assert!(
        !allows(&mut c, &tok, hello),
        "free text after a spelled-out <tool_call>"
    );
}

#[test]
fn required_parallel_allows_several_blocks() {
    let Some((tok, vocab)) = qwen() else { return };
    let spec = ConstraintSpec::ToolCalls {
        tools: vec![tool("search")],
        choice: ToolChoice::Required,
        parallel: true,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    let eos = tok.eos().expect("eos");
    assert!(!allows(&mut c, &tok, eos));
    let block = "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"a\"}}\n</tool_call>";
    feed(&mut c, &tok, block);
    assert!(allows(&mut c, &tok, eos));
    feed(&mut c, &tok, &format!("\n{block}"));
    assert!(allows(&mut c, &tok, eos));
}

/// A bare call ends the output, even with parallel calls allowed: with a
/// newline allowed after it, qwen2.5-coder-0.5b wrote the same bare call
/// again and again until max_tokens (a newline commits to another call).
/// Several bare calls in free text are still parsed (`tools.rs`).
#[test]
fn a_bare_call_ends_the_output_even_when_parallel() {
    let Some((tok, vocab)) = qwen() else { return };
    let eos = tok.eos().expect("eos");
    let nl = tok.encode("\n", false, false)[0];
    for parallel in [true, false] {
        let spec = ConstraintSpec::ToolCalls {
            tools: vec![tool("search"), tool("open")],
            choice: ToolChoice::Auto,
            parallel,
        };
        let mut c = Constraint::new(&vocab, &spec).expect("compile");
        feed(
            &mut c,
            &tok,
            "{\"name\": \"search\", \"arguments\": {\"q\": \"a\"}}",
        );
        assert!(allows(&mut c, &tok, eos), "parallel {parallel}");
        assert!(!allows(&mut c, &tok, nl), "parallel {parallel}");
    }
}

/// Mask time per token for the grammars the server uses, over a realistic
/// token sequence (release build, one core). Printed, and bounded loosely
/// so a pathological regression fails.
#[test]
fn mask_time_per_token() {
    let Some((tok, vocab)) = qwen() else { return };
    let cases = [
        (
            "json_schema",
            ConstraintSpec::JsonSchema {
                schema: json!({"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name", "tags"]}),
                strict: true,
            },
            "{\"name\": \"Ada Lovelace\", \"tags\": [\"math\", \"engines\", \"poetry\"]}".to_string(),
        ),
        (
            "tools auto",
            ConstraintSpec::ToolCalls { tools: vec![tool("search"), tool("open")], choice: ToolChoice::Auto, parallel: true },
            "Let me look that up for you, it will only take a moment.\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"weather Paris\"}}\n</tool_call>".to_string(),
        ),
    ];
    for (what, spec, text) in cases {
        let t0 = Instant::now();
        let mut c = Constraint::new(&vocab, &spec).expect("compile");
        let compile = t0.elapsed();
        let mut l = vec![0.0f32; tok.vocab_size()];
        let mut worst = std::time::Duration::ZERO;
        for t in tok.encode(&text, false, true) {
            l.fill(0.0);
            let s = Instant::now();
            c.mask_logits(&mut l).expect("mask");
            worst = worst.max(s.elapsed());
            assert!(
                l[t as usize].is_finite(),
                "{what}: token {t} of the reference text masked"
            );
            c.commit(t).expect("commit");
        }
        let (mean, n) = c.mask_stats();
        eprintln!("{what}: compile {compile:?}, {n} masks, mean {mean:?}, worst (incl. applying) {worst:?}");
        assert!(mean.as_millis() < 20, "{what}: mean mask {mean:?}");
    }
}
