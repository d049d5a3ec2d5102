//! llmos-grammar: constrained decoding and tool-call parsing for the
//! OpenAI-compatible server (`response_format`, `tools`, `tool_choice`).
//!
//! The grammar engine is [llguidance] (as in llama.cpp and vLLM): a request
//! becomes a Lark grammar with embedded JSON schemas, and before each token
//! the engine computes which tokens of the vocabulary may come next by
//! walking a trie of token bytes. [`GrammarVocab`] builds that trie once per
//! model from [`llmos_text::Tokenizer`]; a [`Constraint`] is one sequence's
//! grammar state.
//!
//! * `json_object` / `json_schema` ([`ConstraintSpec::JsonObject`],
//!   [`ConstraintSpec::JsonSchema`]): the output is one JSON value matching
//!   the schema. Whitespace between JSON tokens is bounded (one space, or
//!   up to two newlines and an indent) so a small model cannot loop on
//!   newlines. `strict` makes schema keywords llguidance cannot enforce an
//!   error instead of being ignored.
//! * `tools` ([`ConstraintSpec::ToolCalls`]) use the hermes format that
//!   Qwen2.5 was trained on: `<tool_call>\n{"name": .., "arguments": ..}\n</tool_call>`.
//!   `required` and a named function force one block (or several, with
//!   `parallel`), one `%json` alternative per tool so each tool's arguments
//!   follow its own schema. `auto` allows free text until the model writes
//!   `<tool_call>`, then only a valid block: a lazy Lark rule ends the free
//!   text at the trigger (in Qwen2.5 `<tool_call>` is a user-defined, not a
//!   control, token, so the trigger is matched as text whichever tokens
//!   spell it; where it is a control token the grammar names the token).
//!   Qwen2.5-Coder also writes calls untagged, as a bare
//!   `{"name": .., "arguments": ..}` object or in a `` ```json `` code
//!   block; as in llama.cpp's hermes grammar, an answer that starts
//!   `{"name": "<a tool>"` (bare or fenced) is a call from there on (a lazy
//!   trigger), held to that tool's schema, while other JSON, and calls of
//!   functions that were not offered, stay text rather than being forced
//!   into a call of one that was. Objects in a tool's parameters
//!   that list `properties` and say nothing of `additionalProperties` are
//!   closed, as llama.cpp's converter reads them, so a model cannot invent
//!   arguments. `none` needs no constraint.
//! * [`parse_tool_calls`] turns the generated text into content plus
//!   OpenAI tool calls and never fails: malformed blocks leave the text as
//!   content. [`render_tools_prompt`] describes tools for models whose chat
//!   template ignores them, in the same format.
//!
//! Cost (measured on the 2-core dev machine, release build, Qwen2.5's 152k
//! vocabulary; `tests/grammar.rs::mask_time_per_token` and
//! `tests/model_decode.rs` print them): building the vocabulary 0.4–1 s,
//! once per model (load it with the model, off the request path); compiling a schema or tool set 2–5 ms; a mask 25 µs
//! mean inside JSON, ~0.1–0.3 ms mean in `auto` free text (a few ms at
//! worst) — small next to a decode step of the 0.5B model (~30 ms).
//!
//! ```no_run
//! use llmos_grammar::{Constraint, ConstraintSpec, GrammarVocab};
//! # fn demo(tok: &llmos_text::Tokenizer, logits: &mut [f32]) -> Result<(), llmos_grammar::GrammarError> {
//! let vocab = GrammarVocab::new(tok)?; // once per model
//! let spec = ConstraintSpec::JsonSchema {
//!     schema: serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}}),
//!     strict: true,
//! };
//! let mut c = Constraint::new(&vocab, &spec)?; // once per request
//! loop {
//!     // logits = model.forward(..)
//!     c.mask_logits(logits)?;
//!     let token = argmax(logits);
//!     if tok.is_eog(token) { break; }
//!     c.commit(token)?;
//!     if c.is_finished() { break; }
//! }
//! # Ok(()) }
//! # fn argmax(l: &[f32]) -> u32 { 0 }
//! ```
//!
//! [llguidance]: https://github.com/guidance-ai/llguidance

mod constraint;
mod error;
mod spec;
mod tools;
mod vocab;

pub use constraint::Constraint;
pub use error::GrammarError;
pub use spec::{ConstraintSpec, ToolChoice, ToolDef};
pub use tools::{
    parse_tool_calls, parse_tool_calls_for, render_tools_prompt, ParsedOutput, ToolCall,
};
pub use vocab::GrammarVocab;

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    /// The server shares a vocabulary between requests and moves each
    /// constraint to the engine thread.
    #[test]
    fn vocab_is_shareable_and_constraints_move() {
        send_sync::<super::GrammarVocab>();
        send::<super::Constraint>();
    }
}
