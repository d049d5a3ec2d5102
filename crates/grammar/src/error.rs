//! The crate's one error type.

/// What can go wrong building or driving a constraint.
#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    // --- building (the server answers these with 400) ---
    /// The request's schema or tools could not be compiled into a grammar.
    #[error("response_format / tools: {what} could not be compiled: {message}")]
    BadSpec { what: String, message: String },
    /// `tool_choice` named a function that is not in `tools`.
    #[error("tool_choice names function {name:?}, which is not in tools ({known})")]
    UnknownTool { name: String, known: String },
    /// `tool_choice` is required/named but `tools` is empty.
    #[error("tool_choice {choice} needs at least one tool")]
    NoTools { choice: &'static str },
    /// The vocabulary has no end-of-generation token to end a grammar with.
    #[error("tokenizer has no EOS/EOG token; a grammar cannot end")]
    NoEos,

    // --- decoding ---
    /// The logits slice is shorter than the vocabulary.
    #[error("mask_logits: {got} logits for a vocabulary of {n_vocab} tokens")]
    LogitsTooShort { got: usize, n_vocab: usize },
    /// The grammar engine failed while computing a mask or consuming a token
    /// (a token outside the mask, or an internal limit).
    #[error("grammar {op}: {message}")]
    Engine { op: &'static str, message: String },
}
