//! Tokenizer behaviour on small hand-made vocabularies: runs without models.

use llmos_text::{StreamDecoder, TextError, Tokenizer, TokenizerSpec};

/// SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then `pieces`.
fn spm(pieces: &[(&str, f32)], types: &[(usize, i32)]) -> Tokenizer {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut scores = vec![0.0f32; 3];
    let mut token_types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        scores.push(0.0);
        token_types.push(6);
    }
    for (p, s) in pieces {
        tokens.push((*p).to_string());
        scores.push(*s);
        token_types.push(1);
    }
    for &(i, t) in types {
        token_types[i] = t;
    }
    let spec = TokenizerSpec {
        model: "llama".into(),
        tokens,
        scores: Some(scores),
        token_types: Some(token_types),
        ..TokenizerSpec::default()
    };
    Tokenizer::from_spec(spec).unwrap_or_else(|e| panic!("{e}"))
}

fn id(tok: &Tokenizer, text: &str) -> u32 {
    tok.token_id(text)
        .unwrap_or_else(|| panic!("no token {text:?}"))
}

#[test]
fn spm_merges_highest_score_first_and_adds_space_prefix() {
    // "▁ab" can form as ▁a+b or ▁+ab; the scores decide which pair merges first,
    // and the final token is the same; "abc" prefers ab (score -1) over bc (-2).
    let tok = spm(
        &[
            ("▁", -5.0),
            ("a", -5.0),
            ("b", -5.0),
            ("c", -5.0),
            ("ab", -1.0),
            ("bc", -2.0),
            ("▁ab", -0.5),
        ],
        &[],
    );
    assert!(tok.add_bos());
    let ids = tok.encode("ab c", true, false);
    assert_eq!(ids, vec![1, id(&tok, "▁ab"), id(&tok, "▁"), id(&tok, "c")]);
    let ids = tok.encode("abc", false, false);
    // default add_space_prefix for SentencePiece is on
    assert_eq!(ids, vec![id(&tok, "▁ab"), id(&tok, "c")]);
    // decode drops the prefix space again...
    assert_eq!(tok.decode(&tok.encode("abc", false, false), false), "abc");
    // ...except after a BOS that skip_special removed (llama.cpp's detokenize)
    assert_eq!(tok.decode(&tok.encode("abc", true, false), true), " abc");
}

#[test]
fn spm_byte_fallback_and_stream_decoder() {
    let tok = spm(&[("▁", -1.0), ("x", -1.0)], &[]);
    // 🤖 is F0 9F A4 96: four byte tokens
    let ids = tok.encode("x🤖", false, false);
    let bytes: Vec<u32> = [0xF0u32, 0x9F, 0xA4, 0x96].iter().map(|b| 3 + b).collect();
    assert_eq!(
        ids,
        [vec![id(&tok, "▁"), id(&tok, "x")], bytes.clone()].concat()
    );
    let mut dec = StreamDecoder::new();
    let out: Vec<String> = ids.iter().map(|&i| dec.push(&tok, i)).collect();
    assert_eq!(out, [" ", "x", "", "", "", "🤖"]);
    assert!(!dec.has_pending());
    // an unfinished character at the end comes out as U+FFFD from finish()
    let mut dec = StreamDecoder::new();
    assert_eq!(dec.push(&tok, bytes[0]), "");
    assert_eq!(dec.push(&tok, bytes[1]), "");
    assert!(dec.has_pending());
    assert_eq!(dec.finish(), "\u{FFFD}");
    // a byte that can never start a character is replaced at once
    let mut dec = StreamDecoder::new();
    assert_eq!(dec.push(&tok, 3 + 0xFF), "\u{FFFD}");
    assert_eq!(dec.push(&tok, id(&tok, "x")), "x");
}

#[test]
fn control_tokens_need_parse_special_but_user_defined_do_not() {
    // <ctl> control (3), <ud> user-defined (4)
    let tok = spm(
        &[("▁", -1.0), ("a", -1.0), ("<ctl>", 0.0), ("<ud>", 0.0)],
        &[(261, 3), (262, 4)],
    );
    let ctl = id(&tok, "<ctl>");
    let ud = id(&tok, "<ud>");
    assert!(tok.encode("a<ud>a", false, false).contains(&ud));
    assert!(!tok.encode("a<ctl>a", false, false).contains(&ctl));
    let ids = tok.encode("a<ctl>a", false, true);
    // after a special token the next fragment gets the space prefix again
    assert_eq!(
        ids,
        vec![
            id(&tok, "▁"),
            id(&tok, "a"),
            ctl,
            id(&tok, "▁"),
            id(&tok, "a")
        ]
    );
    assert!(tok.is_control(ctl) && !tok.is_control(ud));
    assert_eq!(tok.decode(&[ctl, ud], true), "<ud>");
    assert_eq!(tok.decode(&[ctl, ud], false), "<ctl><ud>");
}

/// Byte-level BPE vocabulary: the 256 byte characters, then `extra` tokens.
fn bpe(pre: &str, extra: &[&str], merges: &[&str], name: &str) -> Result<Tokenizer, TextError> {
    let table = byte_chars();
    let mut tokens: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    tokens.extend(extra.iter().map(|s| (*s).to_string()));
    let mut token_types = vec![1; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        if t.starts_with("<|") {
            token_types[i] = 3;
        }
    }
    Tokenizer::from_spec(TokenizerSpec {
        model: "gpt2".into(),
        pre: pre.into(),
        tokens,
        token_types: Some(token_types),
        merges: merges.iter().map(|s| (*s).to_string()).collect(),
        model_name: name.into(),
        ..TokenizerSpec::default()
    })
}

/// GPT-2's byte-to-unicode alphabet, in byte order.
fn byte_chars() -> Vec<char> {
    let mut next = 256u32;
    (0..=255u32)
        .map(|b| {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            let cp = if printable {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(cp).unwrap_or('?')
        })
        .collect()
}

#[test]
fn bpe_applies_merges_by_rank() {
    // ranks: "b c" (0) beats "a b" (1), so "abc" becomes a + bc, not ab + c
    let tok = bpe("gpt-2", &["ab", "bc", "Ġa"], &["b c", "a b", "Ġ a"], "")
        .unwrap_or_else(|e| panic!("{e}"));
    let ids = tok.encode("abc", false, false);
    assert_eq!(ids, vec![id(&tok, "a"), id(&tok, "bc")]);
    // "a b" (1) outranks "Ġ a" (2): Ġ + ab, although Ġa is a token
    let ids = tok.encode(" ab", false, false);
    assert_eq!(ids, vec![id(&tok, "Ġ"), id(&tok, "ab")]);
    assert_eq!(tok.decode(&ids, false), " ab");
    // BPE without metadata: no BOS added
    assert!(!tok.add_bos());
}

#[test]
fn unknown_pre_tokenizer_is_an_error_listing_known_ones() {
    match bpe("no-such-pre", &[], &[], "") {
        Err(TextError::UnknownPreTokenizer { pre, known }) => {
            assert_eq!(pre, "no-such-pre");
            assert!(
                known.contains("qwen2") && known.contains("smollm") && known.contains("llama-bpe"),
                "{known}"
            );
        }
        other => panic!("expected UnknownPreTokenizer, got {other:?}"),
    }
    assert!(matches!(
        bpe("kimi-k2", &[], &[], ""),
        Err(TextError::UnsupportedPreTokenizer { .. })
    ));
    // llama3 family adds BOS by default
    let tok = bpe("llama-bpe", &["<|begin_of_text|>"], &[], "").unwrap_or_else(|e| panic!("{e}"));
    let bos = id(&tok, "<|begin_of_text|>");
    let spec_bos = tok.bos();
    // no bos_token_id in metadata: BPE's default id 11 stands, as in llama.cpp
    assert_eq!(spec_bos, Some(11));
    assert!(tok.add_bos());
    assert_ne!(bos, 11);
}

#[test]
fn rstrip_for_phi3_eats_spaces_after_special_tokens() {
    let tok = bpe("gpt-2", &["<|user|>"], &[], "Phi-3 mini").unwrap_or_else(|e| panic!("{e}"));
    let user = id(&tok, "<|user|>");
    assert_eq!(
        tok.encode("<|user|>  x", false, true),
        vec![user, id(&tok, "x")]
    );
    let tok = bpe("gpt-2", &["<|user|>"], &[], "other").unwrap_or_else(|e| panic!("{e}"));
    // without rstrip "  x" splits as " " + " x" and there is no Ġx merge
    assert_eq!(
        tok.encode("<|user|>  x", false, true),
        vec![user, id(&tok, "Ġ"), id(&tok, "Ġ"), id(&tok, "x")]
    );
}

#[test]
fn eog_set_follows_llama_cpp_texts() {
    let tok = bpe(
        "qwen2",
        &["<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|im_start|>"],
        &[],
        "",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for t in ["<|im_end|>", "<|endoftext|>", "<|fim_pad|>"] {
        assert!(tok.is_eog(id(&tok, t)), "{t}");
    }
    assert!(!tok.is_eog(id(&tok, "<|im_start|>")));
    assert!(!tok.is_eog(u32::MAX));
    assert_eq!(tok.token_bytes(u32::MAX), b"");
    assert_eq!(tok.token_text(u32::MAX), None);
}

#[test]
fn bad_metadata_is_reported() {
    assert!(matches!(
        Tokenizer::from_spec(TokenizerSpec {
            model: "llama".into(),
            ..TokenizerSpec::default()
        }),
        Err(TextError::EmptyVocab)
    ));
    let spec = TokenizerSpec {
        model: "t5".into(),
        tokens: vec!["a".into()],
        ..TokenizerSpec::default()
    };
    match Tokenizer::from_spec(spec) {
        Err(e @ TextError::UnsupportedModel { .. }) => {
            assert!(e.to_string().contains("\"t5\""), "{e}")
        }
        other => panic!("expected UnsupportedModel, got {other:?}"),
    }
    let spec = TokenizerSpec {
        model: "llama".into(),
        tokens: vec!["a".into(), "b".into()],
        scores: Some(vec![0.0]),
        ..TokenizerSpec::default()
    };
    assert!(matches!(
        Tokenizer::from_spec(spec),
        Err(TextError::ShortArray {
            found: 1,
            n_vocab: 2,
            ..
        })
    ));
}

#[test]
fn tokenizer_and_decoder_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<StreamDecoder>();
    assert_send_sync::<llmos_text::ChatTemplate>();
}
