//! The token environment llguidance needs, built from our tokenizer.

use crate::GrammarError;
use llguidance::ParserFactory;
use llmos_text::Tokenizer;
use std::sync::Arc;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

/// A model's vocabulary as llguidance sees it: a token trie over each token's
/// bytes, plus a compiled-grammar factory. Built once per model (about
/// 0.25 s for the trie and 0.5 s for llguidance's precomputed token slices,
/// which keep JSON masks fast, for a 152k vocabulary); cloning shares it.
///
/// Token bytes follow llama.cpp's `common/llguidance.cpp`: a token's piece
/// as `llama_detokenize(.., unparse_special = false)` gives it; tokens that
/// render as nothing there (control and unknown tokens) get their text with
/// the `0xFF` prefix llguidance uses to mark special tokens, so free-text
/// regexes never match them and Lark grammars can name them as `<|im_end|>`.
/// User-defined tokens (Qwen2.5's `<tool_call>`) are plain text, as in
/// llama.cpp: the literal `"<tool_call>"` then matches the single token as
/// well as the same bytes spelled by smaller tokens.
#[derive(Clone)]
pub struct GrammarVocab {
    pub(crate) inner: Arc<VocabInner>,
}

pub(crate) struct VocabInner {
    pub(crate) factory: ParserFactory,
    pub(crate) n_vocab: usize,
    /// Whether `<tool_call>` / `</tool_call>` are special (0xFF-marked)
    /// tokens, so grammars must name them as tokens rather than text.
    pub(crate) tool_tags_special: bool,
}

impl std::fmt::Debug for GrammarVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarVocab")
            .field("n_vocab", &self.inner.n_vocab)
            .field("tool_tags_special", &self.inner.tool_tags_special)
            .finish()
    }
}

/// llguidance's view of the tokenizer. Tokenizing (used only for forced
/// tokens and token healing, which [`crate::Constraint`] does not use) is
/// greedy over the trie, and says so (`tokenize_is_canonical = false`).
struct TrieEnv {
    trie: TokTrie,
}

impl TokenizerEnv for TrieEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.greedy_tokenize(s)
    }

    fn tokenize_is_canonical(&self) -> bool {
        false
    }
}

/// The bytes llguidance sees for token `id` (see [`GrammarVocab`]).
pub(crate) fn trie_bytes(tok: &Tokenizer, id: u32) -> Vec<u8> {
    let piece = tok.token_bytes(id);
    // decode(.., skip_special) hides control and unknown tokens; a lone
    // SentencePiece space can also decode to nothing (its prefix space is
    // removed), so it is not special.
    let hidden = tok.is_control(id)
        || (!piece.is_empty() && piece != b" " && tok.decode_bytes(&[id], true).is_empty());
    if hidden {
        let mut b = Vec::with_capacity(piece.len() + 1);
        b.push(TokTrie::SPECIAL_TOKEN_MARKER);
        b.extend_from_slice(piece);
        b
    } else {
        piece.to_vec()
    }
}

impl GrammarVocab {
    /// Builds the trie and grammar factory for `tok`'s vocabulary. EOS for
    /// the grammar is every end-of-generation token (`<|im_end|>`,
    /// `<|endoftext|>`, `<end_of_turn>`, ...).
    ///
    /// # Errors
    /// [`GrammarError::NoEos`] when the tokenizer has no EOS/EOG token;
    /// [`GrammarError::Engine`] if llguidance rejects the vocabulary.
    pub fn new(tok: &Tokenizer) -> Result<GrammarVocab, GrammarError> {
        let n_vocab = tok.vocab_size();
        let mut eog: Vec<u32> = tok.eog_tokens().to_vec();
        if let Some(e) = tok.eos() {
            if !eog.contains(&e) {
                eog.insert(0, e);
            }
        }
        eog.retain(|&t| (t as usize) < n_vocab);
        let first = *eog.first().ok_or(GrammarError::NoEos)?;
        let words: Vec<Vec<u8>> = (0..n_vocab as u32).map(|i| trie_bytes(tok, i)).collect();
        let info = TokRxInfo::new(n_vocab as u32, first);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eog);
        let tool_tags_special = ["<tool_call>", "</tool_call>"].iter().all(|t| {
            tok.token_id(t).is_some_and(|id| {
                words[id as usize].first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER)
            })
        });
        let env: TokEnv = Arc::new(TrieEnv { trie });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| GrammarError::Engine {
            op: "factory",
            message: e.to_string(),
        })?;
        factory.quiet();
        Ok(GrammarVocab {
            inner: Arc::new(VocabInner {
                factory,
                n_vocab,
                tool_tags_special,
            }),
        })
    }

    /// Number of tokens in the vocabulary (logits past it are masked).
    pub fn n_vocab(&self) -> usize {
        self.inner.n_vocab
    }

    /// Whether this vocabulary has `<tool_call>` as a special (control) token.
    pub fn tool_tags_special(&self) -> bool {
        self.inner.tool_tags_special
    }
}
