//! `llm`: ask another model (e.g. a bigger one) a question. It has its own
//! context: it sees the prompt the agent writes, never the conversation, so
//! nothing leaks into it by accident and its context is not filled by ours.
//!
//! The model is loaded on the first call (a bigger model costs seconds and
//! gigabytes; a run that never asks pays nothing) through a loader the
//! binary supplies (it knows the model store). Its answer comes back as
//! untrusted data: another model's text may repeat whatever was in the
//! prompt, injected instructions included.
//!
//! The tool lives here rather than in llmos-tools because it needs
//! llmos-engine, which the tools crate does not depend on.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use llmos_engine::{Engine, Finish, GenParams};
use llmos_text::Message;
use llmos_tools::args::Args;
use llmos_tools::{Tool, ToolOutput};
use serde_json::{json, Value};

/// Loads the model on first use; the error is a message for the user and the model.
pub type Loader = Box<dyn Fn() -> Result<Engine, String> + Send + Sync>;

/// The system prompt of the other model.
pub const LLM_SYSTEM: &str =
    "You are a knowledgeable assistant. Answer the question directly and concisely.";

/// The `llm` tool.
pub struct AskLlm {
    model: String,
    description: String,
    loader: Loader,
    engine: OnceLock<Result<Engine, String>>,
    params: GenParams,
    n_ctx: usize,
    cancel: Arc<AtomicBool>,
}

impl AskLlm {
    /// A tool that asks `model` (a display name), loaded by `loader` on the
    /// first call; answers are at most `max_tokens` long in a context of
    /// `n_ctx` tokens (0: the engine's default).
    pub fn new(
        model: &str,
        loader: Loader,
        mut params: GenParams,
        max_tokens: usize,
        n_ctx: usize,
        cancel: Arc<AtomicBool>,
    ) -> AskLlm {
        params.max_tokens = Some(max_tokens.max(1));
        AskLlm {
            model: model.to_string(),
            description: format!(
                "Ask another language model ({model}) a question and get its answer. It does not see this \
                 conversation: put everything it needs into the prompt. Use it for knowledge or reasoning \
                 the other tools cannot give."
            ),
            loader,
            engine: OnceLock::new(),
            params,
            n_ctx,
            cancel,
        }
    }

    fn ask(&self, prompt: &str) -> Result<String, String> {
        let engine = self
            .engine
            .get_or_init(|| (self.loader)())
            .as_ref()
            .map_err(|e| format!("llm: cannot load {}: {e}", self.model))?;
        let msgs = [
            Message::new("system", LLM_SYSTEM),
            Message::new("user", prompt),
        ];
        let text = engine
            .render_chat(&msgs)
            .map_err(|e| format!("llm: {}: {e}", self.model))?;
        let ids = engine.encode_prompt(&text, true);
        // A fresh session per question: its own context, nothing carried over.
        let mut session = engine.new_session(self.n_ctx);
        let out = engine
            .generate(&mut session, &ids, &self.params, &self.cancel, |_| {})
            .map_err(|e| format!("llm: {}: {e}", self.model))?;
        let mut answer = out.text.trim().to_string();
        match out.finish {
            Finish::Cancelled => return Err("llm: cancelled".into()),
            Finish::Length => answer.push_str(" […] (cut at the token limit)"),
            _ => {}
        }
        Ok(answer)
    }
}

impl Tool for AskLlm {
    fn name(&self) -> &str {
        "llm"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "description": "The complete question for the other model, with any context it needs"}
            },
            "required": ["prompt"],
            "additionalProperties": false
        })
    }

    fn call(&self, a: Value) -> ToolOutput {
        let prompt = match Args::new(self.name(), &a, &["prompt"]).and_then(|a| a.string("prompt"))
        {
            Ok(p) if !p.trim().is_empty() => p,
            Ok(_) => return ToolOutput::error("llm: 'prompt' is empty; write the question"),
            Err(e) => return ToolOutput::error(e),
        };
        match self.ask(&prompt) {
            Ok(text) => ToolOutput::ok(text).untrusted(),
            Err(e) => ToolOutput::error(e),
        }
    }
}
