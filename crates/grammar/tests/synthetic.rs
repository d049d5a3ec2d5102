//! The special-token path on a hand-made vocabulary (no models needed):
//! where `<tool_call>` is a control token, grammars name it as a token and
//! free text can never produce it by spelling.

use llmos_grammar::{
    parse_tool_calls, Constraint, ConstraintSpec, GrammarVocab, ToolChoice, ToolDef,
};
use llmos_text::{SpecialIds, Tokenizer, TokenizerSpec};
use serde_json::json;

/// SentencePiece: <unk> <s> </s>, control <tool_call> </tool_call>, ▁, 256 bytes.
fn tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> = [
        "<unk>",
        "<s>",
        "</s>",
        "<tool_call>",
        "</tool_call>",
        "\u{2581}",
    ]
    .map(String::from)
    .to_vec();
    let mut types = vec![2, 3, 3, 3, 3, 1];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let spec = TokenizerSpec {
        model: "llama".into(),
        scores: Some(vec![0.0; tokens.len()]),
        tokens,
        token_types: Some(types),
        ids: SpecialIds {
            bos: Some(1),
            eos: Some(2),
            unk: Some(0),
            ..SpecialIds::default()
        },
        add_space_prefix: Some(false),
        ..TokenizerSpec::default()
    };
    Tokenizer::from_spec(spec).expect("tokenizer")
}

fn allowed(c: &mut Constraint, n: usize) -> Vec<u32> {
    let mut l = vec![0.0f32; n];
    c.mask_logits(&mut l).expect("mask");
    (0..n as u32)
        .filter(|&i| l[i as usize].is_finite())
        .collect()
}

fn tools() -> Vec<ToolDef> {
    vec![ToolDef {
        name: "f".into(),
        description: None,
        parameters: Some(
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        ),
        strict: true,
    }]
}

#[test]
fn control_tool_tags_are_named_as_tokens() {
    let tok = tokenizer();
    let vocab = GrammarVocab::new(&tok).expect("vocab");
    assert!(vocab.tool_tags_special());
    let n = tok.vocab_size();
    let (open, close, eos) = (3u32, 4u32, 2u32);

    // required: the first token can only be the <tool_call> token
    let spec = ConstraintSpec::ToolCalls {
        tools: tools(),
        choice: ToolChoice::Required,
        parallel: false,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    assert_eq!(allowed(&mut c, n), vec![open]);
    let text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"n\": 7}}\n</tool_call>";
    let ids = tok.encode(text, false, true);
    assert_eq!((ids[0], *ids.last().expect("ids")), (open, close));
    for &t in &ids {
        assert!(allowed(&mut c, n).contains(&t), "token {t} refused");
        c.commit(t).expect("commit");
    }
    let after = allowed(&mut c, n);
    assert!(
        c.is_finished() || after == vec![eos],
        "after the block: {after:?}"
    );
    let p = parse_tool_calls(&tok.decode(&ids, false));
    assert_eq!(p.tool_calls.len(), 1);
    assert_eq!(p.tool_calls[0].arguments, "{\"n\":7}");

    // auto: free text (never "<" spelling the tag into a call), then the token
    let spec = ConstraintSpec::ToolCalls {
        tools: tools(),
        choice: ToolChoice::Auto,
        parallel: false,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    for t in tok.encode("ok <tool_call", false, false) {
        c.commit(t).expect("free text");
    }
    let ok = allowed(&mut c, n);
    assert!(ok.contains(&eos) && ok.contains(&open));
    c.commit(open).expect("tag");
    let ok = allowed(&mut c, n);
    assert!(!ok.contains(&eos));
    assert_eq!(ok, tok.encode("\n", false, false));
    // <unk> (unknown, hidden on decode) is special too: never allowed in text
    let spec = ConstraintSpec::JsonSchema {
        schema: json!({"type": "string"}),
        strict: true,
    };
    let mut c = Constraint::new(&vocab, &spec).expect("compile");
    c.commit(tok.encode("\"", false, false)[0]).expect("quote");
    assert!(!allowed(&mut c, n).contains(&0));
}
