//! ChatTemplate renders exactly what transformers' apply_chat_template renders
//! (goldens from tools/fixtures/text/make_template_goldens.py).

mod common;

use llmos_text::{ChatTemplate, Message, TextError};
use serde_json::Value;

fn goldens() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chat_template_goldens.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// First line where two renders differ, for a readable failure.
fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  want {w:?}\n  got  {g:?}", i + 1);
        }
    }
    format!(
        "lengths differ: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn renders_match_transformers() {
    let g = goldens();
    let templates = &g["templates"];
    let cases = g["cases"].as_array().unwrap_or_else(|| panic!("no cases"));
    assert!(cases.len() >= 16, "fixture has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let model = case["model"].as_str().unwrap_or_default();
        let t = &templates[model];
        let tmpl = ChatTemplate::from_source(
            model,
            t["source"].as_str().unwrap_or_default(),
            t["bos"].as_str().unwrap_or_default(),
            t["eos"].as_str().unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{model}: {e}"));
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone())
            .unwrap_or_else(|e| panic!("messages: {e}"));
        let tools = case.get("tools").filter(|t| !t.is_null());
        let agp = case["add_generation_prompt"].as_bool().unwrap_or(false);
        let want = case["expected"].as_str().unwrap_or_default();
        match tmpl.render(&messages, agp, tools) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{model} / {} / agp={agp}: {}",
                case["case"],
                first_difference(want, &got)
            )),
            Err(e) => failures.push(format!("{model} / {} / agp={agp}: {e}", case["case"])),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} renders differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn gguf_template_is_the_fixture_template() {
    let g = goldens();
    for (model, t) in g["templates"].as_object().into_iter().flatten() {
        let Some((gguf, _)) = common::load(model) else {
            continue;
        };
        let tmpl = ChatTemplate::from_gguf(&gguf)
            .unwrap_or_else(|e| panic!("{model}: {e}"))
            .unwrap_or_else(|| panic!("{model}: no template"));
        let msgs = [Message::new("user", "Hello!")];
        let want = ChatTemplate::from_source(
            model,
            t["source"].as_str().unwrap_or_default(),
            t["bos"].as_str().unwrap_or_default(),
            t["eos"].as_str().unwrap_or_default(),
        )
        .and_then(|t| t.render(&msgs, true, None));
        assert_eq!(tmpl.render(&msgs, true, None).ok(), want.ok(), "{model}");
    }
}

#[test]
fn builtins_render_expected_turns() {
    let msgs = [
        Message::new("system", "Be brief."),
        Message::new("user", "Hi"),
        Message::new("assistant", "Hello"),
        Message::new("user", "Bye"),
    ];
    let render = |name: &str| {
        ChatTemplate::builtin(name)
            .and_then(|t| t.render(&msgs, true, None))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(
        render("chatml"),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        render("gemma"),
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        render("llama3"),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(
        render("llama2"),
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]"
    );
    assert!(ChatTemplate::builtin_for_arch("gemma3").is_some_and(|t| t.name() == "gemma"));
    assert!(ChatTemplate::builtin_for_arch("qwen2").is_some_and(|t| t.name() == "chatml"));
    assert!(ChatTemplate::builtin_for_arch("bert").is_none());
}

#[test]
fn template_errors_name_the_problem() {
    match ChatTemplate::from_source("broken", "{% for x in %}", "", "") {
        Err(TextError::TemplateSyntax { name, .. }) => assert_eq!(name, "broken"),
        other => panic!(
            "expected TemplateSyntax, got {:?}",
            other.map(|t| t.name().to_string())
        ),
    }
    let t = ChatTemplate::from_source(
        "r",
        "{{ raise_exception('no system role: ' + messages[0].role) }}",
        "",
        "",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    match t.render(&[Message::new("system", "x")], false, None) {
        Err(TextError::TemplateRaised { message, .. }) => {
            assert_eq!(message, "no system role: system")
        }
        other => panic!("expected TemplateRaised, got {other:?}"),
    }
    // `--template chatml` names the built-in
    let t =
        ChatTemplate::from_source("override", "chatml", "", "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.name(), "chatml");
}
