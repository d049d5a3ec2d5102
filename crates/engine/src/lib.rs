//! llmos-engine: prompt → tokens → model → sampler → text.
//!
//! An [`Engine`] owns one loaded model, its tokenizer and chat template, and
//! the thread pool. A [`Session`] is one conversation's KV cache plus the
//! tokens it holds; [`Engine::generate`] reuses the longest cached prefix, so a
//! multi-turn chat only prefills the new turn.

pub mod batch;
mod stop;

pub use stop::StopMatcher;

use llmos_gguf::{GgufError, GgufFile};
use llmos_kernels::pool::ThreadPool;
use llmos_model::{Logits, Model, ModelError, State};
use llmos_sample::{SampleError, Sampler, SamplerConfig};
use llmos_text::{ChatTemplate, Message, StreamDecoder, TextError, Tokenizer};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error(
        "the prompt is {n_prompt} tokens but the context holds {n_ctx}; \
         shorten the prompt or raise --ctx (the model was trained with {n_ctx_train})"
    )]
    PromptTooLong {
        n_prompt: usize,
        n_ctx: usize,
        n_ctx_train: usize,
    },
    #[error("the prompt is empty: there is nothing to continue from")]
    EmptyPrompt,
    #[error(
        "the model has no chat template and none is built in for architecture {arch}; \
         pass --template NAME|FILE or use --raw"
    )]
    NoTemplate { arch: String },
    #[error("constrained decoding failed: {0}")]
    Constraint(String),
}

/// Options for [`Engine::load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// A chat template to use instead of the model's own.
    pub template: Option<ChatTemplate>,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-generation token.
    Eog,
    /// A stop string matched.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The context window is full.
    ContextFull,
    /// The caller's cancel flag was set (Ctrl-C, client gone).
    Cancelled,
}

impl Finish {
    /// The OpenAI `finish_reason` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Eog | Finish::Stop => "stop",
            Finish::Length | Finish::ContextFull => "length",
            Finish::Cancelled => "cancelled",
        }
    }
}

/// Generation settings.
#[derive(Clone, Debug, Default)]
pub struct GenParams {
    /// None: until an end token or the context is full.
    pub max_tokens: Option<usize>,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
}

/// What [`Engine::generate`] produced, with timings.
#[derive(Clone, Debug)]
pub struct GenOutput {
    pub text: String,
    pub tokens: Vec<u32>,
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// Prompt tokens found in the session's cache and not recomputed.
    pub cached_tokens: usize,
    pub prompt_secs: f64,
    pub gen_secs: f64,
}

impl GenOutput {
    pub fn prompt_tps(&self) -> f64 {
        rate(self.prompt_tokens - self.cached_tokens, self.prompt_secs)
    }
    pub fn gen_tps(&self) -> f64 {
        rate(self.tokens.len(), self.gen_secs)
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// One conversation: a KV cache and the tokens it holds.
pub struct Session {
    state: State,
    tokens: Vec<u32>,
}

impl Session {
    pub fn n_ctx(&self) -> usize {
        self.state.n_ctx()
    }
    /// Tokens held in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.state.truncate(0);
    }
}

/// Where the chat template came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` in the GGUF.
    Model,
    /// Built in for the architecture, because the GGUF has none (base models).
    Builtin,
    /// Given by the user (`--template`).
    User,
}

/// A loaded model ready to generate.
pub struct Engine {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub template_source: TemplateSource,
    pub pool: ThreadPool,
}

/// Default prefill step: big enough that the GEMM reuses each unpacked
/// weight tile across many tokens (pp512 against 64: gemma3 +13%, qwen0.5b
/// +4..17%, alternating runs), small enough that the scratch buffers stay
/// under 32 MB for the largest catalog model.
pub const MAX_BATCH: usize = 256;

impl Engine {
    /// Opens a GGUF, checks the model and builds its tokenizer and template.
    ///
    /// # Errors
    /// Any problem with the file, the architecture or the tokenizer.
    pub fn load(path: &Path, opts: LoadOptions) -> Result<Engine, EngineError> {
        let file = Arc::new(GgufFile::open(path)?);
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let model = Model::load(Arc::clone(&file))?;
        let (template, template_source) = match opts.template {
            // A user's template sees this model's BOS/EOS texts.
            Some(t) => {
                let text = |id: Option<u32>| {
                    id.and_then(|i| tokenizer.token_text(i))
                        .unwrap_or("")
                        .to_string()
                };
                let t = t.with_special_tokens(&text(tokenizer.bos()), &text(tokenizer.eos()));
                (Some(t), TemplateSource::User)
            }
            None => match ChatTemplate::from_gguf(&file)? {
                Some(t) => (Some(t), TemplateSource::Model),
                None => (
                    ChatTemplate::builtin_for_arch(model.cfg.arch.name()),
                    TemplateSource::Builtin,
                ),
            },
        };
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        Ok(Engine {
            model,
            tokenizer,
            template,
            template_source,
            pool: ThreadPool::new(threads),
        })
    }

    /// A fresh session with room for `n_ctx` tokens (0: min(4096, trained)).
    pub fn new_session(&self, n_ctx: usize) -> Session {
        let n_ctx = if n_ctx == 0 {
            self.model.cfg.n_ctx_train.min(4096)
        } else {
            n_ctx
        };
        Session {
            state: self.model.new_state(n_ctx, MAX_BATCH),
            tokens: Vec::new(),
        }
    }

    /// Renders a conversation with the chat template, ready for generation.
    ///
    /// # Errors
    /// No template, or the template raised an error.
    pub fn render_chat(&self, messages: &[Message]) -> Result<String, EngineError> {
        let t = self
            .template
            .as_ref()
            .ok_or_else(|| EngineError::NoTemplate {
                arch: self.model.cfg.arch.name().to_string(),
            })?;
        Ok(t.render(messages, true, None)?)
    }

    /// Tokenizes a prompt. Rendered chat text may contain the template's
    /// special tokens, so it is parsed with special tokens on; raw text is
    /// plain text. BOS follows the metadata, but is not doubled when the
    /// template already wrote it.
    pub fn encode_prompt(&self, text: &str, chat: bool) -> Vec<u32> {
        let tk = &self.tokenizer;
        let mut ids = tk.encode(text, false, chat);
        if tk.add_bos() {
            if let Some(bos) = tk.bos() {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        if tk.add_eos() && !chat {
            if let Some(eos) = tk.eos() {
                ids.push(eos);
            }
        }
        ids
    }

    /// Generates a continuation of `prompt`, calling `on_text` with each
    /// piece of valid UTF-8 as soon as it can no longer be part of a stop
    /// string. Checks `cancel` between tokens.
    ///
    /// # Errors
    /// An empty prompt, a prompt longer than the context, bad sampler
    /// settings, or a model error.
    pub fn generate(
        &self,
        sess: &mut Session,
        prompt: &[u32],
        params: &GenParams,
        cancel: &AtomicBool,
        on_text: impl FnMut(&str),
    ) -> Result<GenOutput, EngineError> {
        self.generate_constrained(sess, prompt, params, None, cancel, on_text)
    }

    /// [`generate`](Engine::generate) under an optional grammar (a JSON
    /// schema, tool calls: `llmos-grammar` behind the
    /// [`batch::TokenConstraint`] seam, as the batch scheduler uses it).
    /// Before each sample the constraint masks the logits; the sampled
    /// token is committed to it; generation ends with [`Finish::Stop`] once
    /// the grammar is finished (an end token is only allowed where the
    /// grammar may end, and ends with [`Finish::Eog`] as usual).
    ///
    /// # Errors
    /// As [`generate`](Engine::generate), and
    /// [`EngineError::Constraint`] when the grammar allows no token or
    /// rejects the sampled one.
    pub fn generate_constrained(
        &self,
        sess: &mut Session,
        prompt: &[u32],
        params: &GenParams,
        mut constraint: Option<&mut dyn batch::TokenConstraint>,
        cancel: &AtomicBool,
        mut on_text: impl FnMut(&str),
    ) -> Result<GenOutput, EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let n_ctx = sess.n_ctx();
        if prompt.len() > n_ctx {
            return Err(EngineError::PromptTooLong {
                n_prompt: prompt.len(),
                n_ctx,
                n_ctx_train: self.model.cfg.n_ctx_train,
            });
        }
        let mut sampler = Sampler::new(params.sampler.clone())?;

        // Reuse the cached prefix; at least one token must run to get logits.
        let common = sess
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        let cached = common.min(prompt.len() - 1);
        sess.tokens.truncate(cached);
        sess.state.truncate(cached);

        let t0 = Instant::now();
        let mut logits = self
            .model
            .forward(
                &self.pool,
                &mut sess.state,
                &prompt[cached..],
                cached,
                Logits::Last,
            )?
            .to_vec();
        sess.tokens.extend_from_slice(&prompt[cached..]);
        let prompt_secs = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut out = GenOutput {
            text: String::new(),
            tokens: Vec::new(),
            finish: Finish::Length,
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
            prompt_secs,
            gen_secs: 0.0,
        };
        let mut decoder = StreamDecoder::new();
        let mut stops = StopMatcher::new(&params.stop);
        let max_tokens = params.max_tokens.unwrap_or(usize::MAX);
        out.finish = loop {
            if out.tokens.len() >= max_tokens {
                break Finish::Length;
            }
            if cancel.load(Ordering::Relaxed) {
                break Finish::Cancelled;
            }
            if let Some(c) = constraint.as_deref_mut() {
                c.mask(&mut logits).map_err(EngineError::Constraint)?;
            }
            let tok = sampler.sample(&mut logits, &sess.tokens)?;
            if self.tokenizer.is_eog(tok) {
                break Finish::Eog;
            }
            let mut grammar_done = false;
            if let Some(c) = constraint.as_deref_mut() {
                c.commit(tok).map_err(EngineError::Constraint)?;
                grammar_done = c.is_finished();
            }
            out.tokens.push(tok);
            if !self.tokenizer.is_control(tok) {
                let piece = decoder.push(&self.tokenizer, tok);
                let (emit, hit) = stops.push(&piece);
                if !emit.is_empty() {
                    out.text.push_str(&emit);
                    on_text(&emit);
                }
                if hit {
                    break Finish::Stop;
                }
            }
            if grammar_done {
                // The grammar allows nothing more (like a stop string, the
                // last token is not run; the next turn's prefix reuse runs it).
                break Finish::Stop;
            }
            if sess.tokens.len() >= n_ctx {
                break Finish::ContextFull;
            }
            let pos = sess.tokens.len();
            logits.copy_from_slice(self.model.forward(
                &self.pool,
                &mut sess.state,
                &[tok],
                pos,
                Logits::Last,
            )?);
            sess.tokens.push(tok);
        };
        if out.finish != Finish::Stop {
            let mut rest = decoder.finish();
            rest.insert_str(0, &stops.flush());
            if !rest.is_empty() {
                out.text.push_str(&rest);
                on_text(&rest);
            }
        }
        out.gen_secs = t1.elapsed().as_secs_f64();
        Ok(out)
    }
}
