//! One constrained sequence: mask, sample, commit.

use crate::{ConstraintSpec, GrammarError, GrammarVocab};
use llguidance::api::TopLevelGrammar;
use llguidance::Matcher;
use std::time::{Duration, Instant};

/// The grammar state of one generated sequence.
///
/// Per token: [`mask_logits`](Constraint::mask_logits) before sampling,
/// [`commit`](Constraint::commit) with the sampled token after, and stop when
/// [`is_finished`](Constraint::is_finished) (or an end-of-generation token
/// was sampled, which the mask only allows where the grammar can end).
pub struct Constraint {
    matcher: Matcher,
    n_vocab: usize,
    mask_time: Duration,
    n_masks: u32,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("n_vocab", &self.n_vocab)
            .field("n_masks", &self.n_masks)
            .field("stopped", &self.matcher.is_stopped())
            .finish()
    }
}

fn engine(op: &'static str, e: impl std::fmt::Display) -> GrammarError {
    GrammarError::Engine {
        op,
        message: e.to_string(),
    }
}

impl Constraint {
    /// Compiles `spec` for `vocab` (a JSON schema of a few properties takes
    /// about a millisecond).
    ///
    /// # Errors
    /// A schema or grammar llguidance cannot compile, an unknown tool name,
    /// or no tools where a call is required: all [`GrammarError`] variants
    /// the server should answer with 400.
    pub fn new(vocab: &GrammarVocab, spec: &ConstraintSpec) -> Result<Constraint, GrammarError> {
        let lark = spec.to_lark(vocab.inner.tool_tags_special)?;
        let what = match spec {
            ConstraintSpec::JsonObject => "json_object",
            ConstraintSpec::JsonSchema { .. } => "json_schema",
            ConstraintSpec::ToolCalls { .. } => "tools",
            ConstraintSpec::Lark(_) => "grammar",
        };
        let bad = |message: String| GrammarError::BadSpec {
            what: what.into(),
            message,
        };
        let parser = vocab
            .inner
            .factory
            .create_parser(TopLevelGrammar::from_lark(lark))
            .map_err(|e| bad(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(bad(e));
        }
        Ok(Constraint {
            matcher,
            n_vocab: vocab.inner.n_vocab,
            mask_time: Duration::ZERO,
            n_masks: 0,
        })
    }

    /// Sets the logit of every token the grammar does not allow next to
    /// `-inf` (tokens past the vocabulary included). End-of-generation
    /// tokens stay only where the grammar can end; once it is finished,
    /// only they remain.
    ///
    /// # Errors
    /// `logits` shorter than the vocabulary, or the grammar engine failed
    /// (then no token is allowed; the caller should end the sequence).
    pub fn mask_logits(&mut self, logits: &mut [f32]) -> Result<(), GrammarError> {
        if logits.len() < self.n_vocab {
            return Err(GrammarError::LogitsTooShort {
                got: logits.len(),
                n_vocab: self.n_vocab,
            });
        }
        let t0 = Instant::now();
        let mask = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| engine("mask", e))?;
        self.mask_time += t0.elapsed();
        self.n_masks += 1;
        if mask.num_set() == 0 {
            return Err(GrammarError::Engine {
                op: "mask",
                message: "no token is allowed".into(),
            });
        }
        let words = mask.as_slice();
        let (inside, past) = logits.split_at_mut(self.n_vocab);
        for (chunk, &w) in inside.chunks_mut(32).zip(words) {
            if w == u32::MAX {
                continue;
            }
            for (j, l) in chunk.iter_mut().enumerate() {
                if w & (1 << j) == 0 {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        past.fill(f32::NEG_INFINITY);
        Ok(())
    }

    /// Advances the grammar by the sampled `token`.
    ///
    /// # Errors
    /// The token was not allowed (it was sampled without the mask), or the
    /// grammar engine failed.
    pub fn commit(&mut self, token: u32) -> Result<(), GrammarError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| engine("commit", e))
    }

    /// Whether the grammar is complete and allows nothing more: generation
    /// should stop (the server reports `stop` / `tool_calls`).
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// Whether the text so far is a complete match (an end-of-generation
    /// token would be allowed now).
    pub fn is_accepting(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }

    /// Mean time of one [`mask_logits`](Constraint::mask_logits) so far
    /// (mask computation only), and how many were computed.
    pub fn mask_stats(&self) -> (Duration, u32) {
        let mean = if self.n_masks == 0 {
            Duration::ZERO
        } else {
            self.mask_time / self.n_masks
        };
        (mean, self.n_masks)
    }
}
