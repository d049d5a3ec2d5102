//! The crate's one error type.

/// Everything that can go wrong building a tokenizer or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    // ---- tokenizer metadata ----
    /// A required GGUF key is absent.
    #[error("tokenizer from GGUF: key {key} is missing")]
    MissingKey { key: &'static str },
    /// A GGUF key holds the wrong type.
    #[error("tokenizer from GGUF: key {key} should be {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
    /// A per-token array is shorter than the token list.
    #[error("tokenizer from GGUF: {key} has {found} entries, fewer than the {n_vocab} tokens")]
    ShortArray {
        key: &'static str,
        found: usize,
        n_vocab: usize,
    },
    /// `tokenizer.ggml.tokens` is empty.
    #[error("tokenizer from GGUF: tokenizer.ggml.tokens is empty")]
    EmptyVocab,
    /// More tokens than a u32 id can name.
    #[error("tokenizer from GGUF: {n} tokens do not fit u32 ids")]
    VocabTooLarge { n: usize },
    /// `tokenizer.ggml.model` names a tokenizer llmos does not implement.
    #[error("tokenizer from GGUF: tokenizer.ggml.model = {model:?} is not supported (supported: gpt2, llama)")]
    UnsupportedModel { model: String },
    /// `tokenizer.ggml.pre` is a name llama.cpp does not know either.
    #[error("tokenizer from GGUF: unknown pre-tokenizer type tokenizer.ggml.pre = {pre:?} (known: {known})")]
    UnknownPreTokenizer { pre: String, known: String },
    /// `tokenizer.ggml.pre` is known to llama.cpp but needs code llmos lacks.
    #[error("tokenizer from GGUF: pre-tokenizer {pre:?} is not supported by llmos yet")]
    UnsupportedPreTokenizer { pre: String },
    /// A pre-tokenizer regex failed to compile.
    #[error("tokenizer: pre-tokenizer regex {regex:?} does not compile: {message}")]
    PreTokenizerRegex { regex: String, message: String },
    // ---- chat templates ----
    /// The template source does not parse.
    #[error("chat template {name}: syntax error: {message}")]
    TemplateSyntax { name: String, message: String },
    /// The template called `raise_exception(msg)`.
    #[error("chat template {name}: the template raised: {message}")]
    TemplateRaised { name: String, message: String },
    /// Rendering failed for another reason.
    #[error("chat template {name}: render failed: {message}")]
    TemplateRender { name: String, message: String },
    /// `--template NAME` names no built-in template.
    #[error("chat template: unknown built-in template {name:?} (known: {known})")]
    UnknownTemplate { name: String, known: String },
    /// `tokenizer.chat_template` is present but not a string.
    #[error("chat template from GGUF: tokenizer.chat_template should be a string, found {found}")]
    TemplateNotString { found: String },
}
