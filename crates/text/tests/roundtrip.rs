//! decode(encode(x)) == x on the golden corpus, and streaming decode of
//! characters split across tokens, on the real models.

mod common;

use llmos_text::{StreamDecoder, Tokenizer};

fn corpus() -> Option<Vec<String>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tokenizer/corpus.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("note: {path} not found; skipping");
        return None;
    };
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}")))
}

/// Every token pushed through a StreamDecoder: the concatenation equals the
/// one-shot decode, and no piece holds a replacement character.
fn stream_all(tok: &Tokenizer, ids: &[u32]) -> (String, Vec<String>) {
    let mut dec = StreamDecoder::new();
    let mut pieces: Vec<String> = ids.iter().map(|&id| dec.push(tok, id)).collect();
    pieces.push(dec.finish());
    (pieces.concat(), pieces)
}

#[test]
fn decode_inverts_encode_on_the_corpus() {
    let Some(corpus) = corpus() else { return };
    for stem in common::MODELS {
        let Some((_, tok)) = common::load(stem) else {
            continue;
        };
        let mut bad = Vec::new();
        for s in &corpus {
            // parse_special = false: control-token text stays text, and
            // user-defined tokens render as their text, so nothing is lost.
            let ids = tok.encode(s, false, false);
            let back = tok.decode(&ids, false);
            if &back != s {
                bad.push(format!("  {s:?}\n    -> {ids:?}\n    -> {back:?}"));
            }
            let (streamed, pieces) = stream_all(&tok, &ids);
            if &streamed != s && !s.contains('\u{FFFD}') {
                bad.push(format!("  stream {s:?} -> {pieces:?}"));
            }
        }
        assert!(
            bad.is_empty(),
            "{stem}: {} strings do not round-trip:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }
}

#[test]
fn stream_decoder_holds_split_emoji() {
    for stem in common::MODELS {
        let Some((_, tok)) = common::load(stem) else {
            continue;
        };
        // U+13000 EGYPTIAN HIEROGLYPH A001 is in none of these vocabularies as a
        // token, so it is spelled in byte tokens (byte-level BPE bytes, or
        // SentencePiece <0xXX> fallback).
        let text = "a𓀀b";
        let ids = tok.encode(text, false, false);
        assert!(ids.len() >= 4, "{stem}: {ids:?}");
        let (streamed, pieces) = stream_all(&tok, &ids);
        assert_eq!(streamed, text, "{stem}: {pieces:?}");
        assert!(
            pieces.iter().all(|p| !p.contains('\u{FFFD}')),
            "{stem}: {pieces:?}"
        );
        assert!(
            pieces.iter().any(|p| p.is_empty()),
            "{stem}: some token must end mid-character: {pieces:?}"
        );
    }
}

#[test]
fn chat_special_tokens_parse_only_when_asked() {
    for stem in ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"] {
        let Some((_, tok)) = common::load(stem) else {
            continue;
        };
        let start = tok
            .token_id("<|im_start|>")
            .unwrap_or_else(|| panic!("{stem}: no <|im_start|>"));
        let end = tok
            .token_id("<|im_end|>")
            .unwrap_or_else(|| panic!("{stem}: no <|im_end|>"));
        let s = "<|im_start|>user\nhi<|im_end|>";
        let parsed = tok.encode(s, false, true);
        assert_eq!(parsed.first(), Some(&start), "{stem}");
        assert_eq!(parsed.last(), Some(&end), "{stem}");
        let plain = tok.encode(s, false, false);
        assert!(
            !plain.contains(&start) && !plain.contains(&end),
            "{stem}: {plain:?}"
        );
        assert!(tok.is_eog(end), "{stem}: <|im_end|> ends generation");
        assert!(tok.is_control(end));
        assert_eq!(tok.decode(&parsed, true), "user\nhi", "{stem}");
        assert_eq!(tok.decode(&parsed, false), s, "{stem}");
    }
}

#[test]
fn gemma_adds_bos_and_treats_end_of_turn_as_eog() {
    let Some((_, tok)) = common::load("gemma3-270m") else {
        return;
    };
    assert!(tok.add_bos());
    assert_eq!(tok.bos(), Some(2));
    assert_eq!(tok.eos(), Some(1));
    let ids = tok.encode("Hello", true, false);
    assert_eq!(ids.first(), Some(&2));
    let eot = tok
        .token_id("<end_of_turn>")
        .unwrap_or_else(|| panic!("no <end_of_turn>"));
    assert!(tok.is_eog(eot) && tok.is_eog(1));
    assert!(!tok.is_eog(2));
    // user-defined whitespace tokens are matched even without parse_special
    let nl3 = tok
        .token_id("\n\n\n")
        .unwrap_or_else(|| panic!("no \\n\\n\\n token"));
    assert!(tok.encode("a\n\n\nb", false, false).contains(&nl3));
    // skip_special drops the BOS the tokenizer added
    assert_eq!(tok.decode(&ids, true), "Hello");
}
