//! Continuous batching: many sequences, one pass over the weights per step.
//!
//! A [`Batcher`] owns a fixed set of *slots* (`--parallel N`), each with its
//! own KV cache, and runs a scheduler loop on its own OS thread. Requests
//! arrive through a bounded queue; a request joins the running batch as soon
//! as a slot is free, and leaves it the step it finishes. Every step builds
//! one [`forward_multi`](llmos_model::Model::forward_multi) call:
//!
//! - each decoding sequence contributes its one new token (decode first, so
//!   streams keep flowing while a long prompt is being read);
//! - prefilling sequences fill the rest of the step's token budget with
//!   chunks of their prompts.
//!
//! Slots keep their tokens after a sequence ends. A new request goes to the
//! free slot whose cached tokens share the longest prefix with its prompt
//! (llama-server's `cache_prompt`), so a second request with the same long
//! system prompt prefills only what differs.
//!
//! The engine knows nothing about HTTP: results go to a [`Sink`], and a sink
//! whose receiver is gone cancels its sequence at the next step.

use crate::{Engine, Finish};
use llmos_model::{KvCache, Logits, Scratch, SeqStep};
use llmos_sample::{Sampler, SamplerConfig};
use llmos_text::StreamDecoder;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use crate::stop::StopMatcher;

/// Where a sequence's output goes.
pub trait Sink: Send {
    /// Delivers an event; `false` means the receiver is gone (cancel).
    fn send(&mut self, ev: Event) -> bool;
    /// Whether the receiver is gone (checked before every step).
    fn is_closed(&self) -> bool;
}

/// A grammar that restricts which tokens may come next (JSON schema, tool
/// calls). `llmos_grammar::Constraint` implements it (below), for the server
/// and the agent alike.
pub trait TokenConstraint: Send {
    /// Sets the logits of forbidden tokens to -inf.
    ///
    /// # Errors
    /// The grammar is in a state where nothing can follow.
    fn mask(&mut self, logits: &mut [f32]) -> Result<(), String>;
    /// Advances the grammar by `token`.
    ///
    /// # Errors
    /// The token was not allowed.
    fn commit(&mut self, token: u32) -> Result<(), String>;
    /// The grammar accepts what was generated and allows nothing more.
    fn is_finished(&self) -> bool;
}

impl TokenConstraint for llmos_grammar::Constraint {
    fn mask(&mut self, logits: &mut [f32]) -> Result<(), String> {
        self.mask_logits(logits).map_err(|e| e.to_string())
    }
    fn commit(&mut self, token: u32) -> Result<(), String> {
        llmos_grammar::Constraint::commit(self, token).map_err(|e| e.to_string())
    }
    fn is_finished(&self) -> bool {
        llmos_grammar::Constraint::is_finished(self)
    }
}

/// One generation request.
pub struct SeqRequest {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
    /// Some(k): report each token's logprob and the k most likely alternatives.
    pub logprobs: Option<usize>,
    pub constraint: Option<Box<dyn TokenConstraint>>,
    pub sink: Box<dyn Sink>,
}

/// A token's log-probability, and the most likely alternatives at its step.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub bytes: Vec<u8>,
    pub logprob: f32,
    /// (token, bytes, logprob), most likely first.
    pub top: Vec<(u32, Vec<u8>, f32)>,
}

/// Token counts of a finished sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqUsage {
    pub prompt_tokens: usize,
    /// Prompt tokens found in the slot's cache and not recomputed.
    pub cached_tokens: usize,
    pub completion_tokens: usize,
}

/// What a sequence sends to its [`Sink`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// New text (maybe empty when only logprobs are new).
    Delta {
        text: String,
        logprobs: Vec<TokenLogprob>,
    },
    /// The sequence ended; nothing follows.
    Done { finish: Finish, usage: SeqUsage },
    /// The sequence failed; nothing follows.
    Failed(String),
}

/// Scheduler settings.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Sequences that run at once, each with its own KV cache.
    pub slots: usize,
    /// Tokens per slot's KV cache.
    pub n_ctx: usize,
    /// Most tokens in one forward step (decode tokens plus prefill chunks).
    pub step_tokens: usize,
    /// Requests that may wait for a slot; more are refused.
    pub queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            slots: 4,
            n_ctx: 4096,
            step_tokens: 128,
            queue: 64,
        }
    }
}

/// Why [`Batcher::submit`] refused a request.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    #[error("the queue is full ({queued} requests waiting); retry later")]
    QueueFull { queued: usize },
    #[error("the engine thread has stopped")]
    Stopped,
    #[error("the prompt is {n_prompt} tokens and max_tokens is {max_tokens}, but the context holds {n_ctx}")]
    TooLong {
        n_prompt: usize,
        max_tokens: usize,
        n_ctx: usize,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
}

/// Counters the scheduler updates and `/metrics` reads.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Requests waiting for a slot.
    pub queued: AtomicUsize,
    /// Sequences in slots.
    pub active: AtomicUsize,
    /// KV cells (tokens) held by running sequences.
    pub kv_cells_active: AtomicUsize,
    /// KV cells kept in idle slots for prefix reuse.
    pub kv_cells_cached: AtomicUsize,
    /// Sequences in the last step.
    pub last_batch: AtomicUsize,
    pub steps: AtomicU64,
    /// Sum over steps of the sequences in the step.
    pub step_seqs: AtomicU64,
    /// Sum over steps of the tokens in the step.
    pub step_tokens: AtomicU64,
    /// Prompt tokens computed (not reused from a cache).
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens reused from a slot's cache.
    pub cached_tokens: AtomicU64,
    /// Requests that started from a prefix copied from another slot.
    pub prefix_copies: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub finished: AtomicU64,
    pub cancelled: AtomicU64,
    pub failed: AtomicU64,
}

/// Handle to a scheduler thread; cheap to share.
pub struct Batcher {
    tx: mpsc::Sender<SeqRequest>,
    stats: Arc<BatchStats>,
    cfg: BatchConfig,
    kv_bytes_per_cell: usize,
}

impl Batcher {
    /// Allocates the slots and starts the scheduler thread.
    ///
    /// # Errors
    /// The OS refused the thread.
    pub fn start(engine: Arc<Engine>, cfg: BatchConfig) -> std::io::Result<Batcher> {
        let cfg = BatchConfig {
            slots: cfg.slots.max(1),
            n_ctx: cfg.n_ctx.max(1),
            step_tokens: cfg.step_tokens.max(cfg.slots.max(1)),
            queue: cfg.queue,
        };
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(BatchStats::default());
        let kv = engine.model.new_kv(1);
        let kv_bytes_per_cell = kv.kv_bytes();
        drop(kv);
        let st = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("llmos-batch".into())
            .spawn(move || Scheduler::new(engine, cfg, st).run(rx))?;
        Ok(Batcher {
            tx,
            stats,
            cfg,
            kv_bytes_per_cell,
        })
    }

    pub fn config(&self) -> BatchConfig {
        self.cfg
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// KV cache bytes per token of context, all layers.
    pub fn kv_bytes_per_cell(&self) -> usize {
        self.kv_bytes_per_cell
    }

    /// Queues a request. Checks the context here, so the caller can answer
    /// with an error before streaming begins.
    ///
    /// # Errors
    /// An empty prompt, prompt + max_tokens over the context, a full queue,
    /// or a stopped engine thread.
    pub fn submit(&self, req: SeqRequest) -> Result<(), SubmitError> {
        if req.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if req.prompt.len().saturating_add(req.max_tokens) > self.cfg.n_ctx {
            return Err(SubmitError::TooLong {
                n_prompt: req.prompt.len(),
                max_tokens: req.max_tokens,
                n_ctx: self.cfg.n_ctx,
            });
        }
        let queued = self.stats.queued.fetch_add(1, Ordering::SeqCst);
        if queued >= self.cfg.queue {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::QueueFull { queued });
        }
        self.tx.send(req).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            SubmitError::Stopped
        })
    }
}

/// A sequence running in a slot.
struct Seq {
    req: SeqRequest,
    sampler: Sampler,
    decoder: StreamDecoder,
    stops: StopMatcher,
    usage: SeqUsage,
    /// Tokens generated so far.
    generated: usize,
}

struct Slot {
    kv: KvCache,
    /// Prompt plus generated tokens; the first `kv.len()` are in the cache.
    tokens: Vec<u32>,
    seq: Option<Seq>,
    /// Step at which the slot was last given a sequence (for LRU ties).
    last_used: u64,
}

/// One slot's share of a step.
struct Item {
    slot: usize,
    n: usize,
    logits: bool,
}

struct Scheduler {
    engine: Arc<Engine>,
    cfg: BatchConfig,
    stats: Arc<BatchStats>,
    slots: Vec<Slot>,
    scratch: Scratch,
    waiting: VecDeque<SeqRequest>,
    step: u64,
    row: Vec<f32>,
}

impl Scheduler {
    fn new(engine: Arc<Engine>, cfg: BatchConfig, stats: Arc<BatchStats>) -> Scheduler {
        let slots = (0..cfg.slots)
            .map(|_| Slot {
                kv: engine.model.new_kv(cfg.n_ctx),
                tokens: Vec::new(),
                seq: None,
                last_used: 0,
            })
            .collect();
        let scratch = engine.model.new_scratch(cfg.step_tokens, cfg.n_ctx);
        Scheduler {
            engine,
            cfg,
            stats,
            slots,
            scratch,
            waiting: VecDeque::new(),
            step: 0,
            row: Vec::new(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<SeqRequest>) {
        loop {
            // Block only when there is nothing to do.
            if self.waiting.is_empty() && self.slots.iter().all(|s| s.seq.is_none()) {
                match rx.recv() {
                    Ok(r) => self.waiting.push_back(r),
                    Err(_) => return, // every Batcher handle is gone
                }
            }
            while let Ok(r) = rx.try_recv() {
                self.waiting.push_back(r);
            }
            self.drop_cancelled();
            self.admit();
            self.publish();
            if let Err(e) = self.step_once() {
                self.fail_all(&e);
            }
            self.publish();
        }
    }

    /// Ends sequences (and forgets waiting requests) whose client is gone.
    fn drop_cancelled(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|r| !r.sink.is_closed());
        let gone = before - self.waiting.len();
        if gone > 0 {
            self.stats.queued.fetch_sub(gone, Ordering::SeqCst);
            self.stats
                .cancelled
                .fetch_add(gone as u64, Ordering::Relaxed);
        }
        for i in 0..self.slots.len() {
            if self.slots[i]
                .seq
                .as_ref()
                .is_some_and(|s| s.req.sink.is_closed())
            {
                self.finish(i, Finish::Cancelled);
            }
        }
    }

    /// Moves waiting requests into free slots, best cached prefix first.
    fn admit(&mut self) {
        while let Some(free) = self.slots.iter().position(|s| s.seq.is_none()) {
            let Some(req) = self.waiting.pop_front() else {
                return;
            };
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            // The free slot sharing the longest prefix; ties go to the least recently used.
            let (best, common) = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.seq.is_none())
                .map(|(i, s)| (i, common_prefix(&s.tokens[..s.kv.len()], &req.prompt)))
                .max_by_key(|&(i, c)| (c, std::cmp::Reverse(self.slots[i].last_used)))
                .unwrap_or((free, 0));
            let sampler = match Sampler::new(req.sampler.clone()) {
                Ok(s) => s,
                Err(e) => {
                    let mut req = req;
                    req.sink.send(Event::Failed(e.to_string()));
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            // At least one prompt token must run to produce logits.
            let mut keep = common.min(req.prompt.len() - 1);
            self.slots[best].kv.truncate(keep);
            // Any other slot, busy or not, may hold a longer prefix (requests
            // that share a system prompt and arrive together): copy its
            // cached positions instead of prefilling them again.
            let donor = self
                .slots
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .map(|(i, s)| (i, common_prefix(&s.tokens[..s.kv.len()], &req.prompt)))
                .max_by_key(|&(_, c)| c);
            if let Some((d, c)) = donor {
                let c = c.min(req.prompt.len() - 1);
                if c >= keep + MIN_COPY {
                    let (dst, src) = two_slots(&mut self.slots, best, d);
                    if dst.kv.copy_prefix_from(&src.kv, c).is_ok() {
                        keep = c;
                        self.stats.prefix_copies.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let slot = &mut self.slots[best];
            slot.tokens.clear();
            slot.tokens.extend_from_slice(&req.prompt);
            slot.last_used = self.step;
            self.stats
                .cached_tokens
                .fetch_add(keep as u64, Ordering::Relaxed);
            let usage = SeqUsage {
                prompt_tokens: req.prompt.len(),
                cached_tokens: keep,
                completion_tokens: 0,
            };
            slot.seq = Some(Seq {
                stops: StopMatcher::new(&req.stop),
                req,
                sampler,
                decoder: StreamDecoder::new(),
                usage,
                generated: 0,
            });
        }
    }

    /// Plans and runs one forward step, then samples for every sequence
    /// that produced logits.
    fn step_once(&mut self) -> Result<(), String> {
        let mut budget = self.cfg.step_tokens;
        let mut items: Vec<Item> = Vec::new();
        // Decoding sequences first: one token each.
        for (i, s) in self.slots.iter().enumerate() {
            if s.seq.is_some() && s.tokens.len() == s.kv.len() + 1 && budget > 0 {
                items.push(Item {
                    slot: i,
                    n: 1,
                    logits: true,
                });
                budget -= 1;
            }
        }
        // Prefill chunks, oldest admission first.
        let mut prefilling: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                let s = &self.slots[i];
                s.seq.is_some() && s.tokens.len() > s.kv.len() + 1
            })
            .collect();
        prefilling.sort_by_key(|&i| self.slots[i].last_used);
        for i in prefilling {
            if budget == 0 {
                break;
            }
            let s = &self.slots[i];
            let rest = s.tokens.len() - s.kv.len();
            let n = rest.min(budget);
            items.push(Item {
                slot: i,
                n,
                logits: n == rest,
            });
            budget -= n;
        }
        if items.is_empty() {
            return Ok(());
        }
        let n_tokens: usize = items.iter().map(|it| it.n).sum();
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        self.stats
            .step_seqs
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        self.stats
            .step_tokens
            .fetch_add(n_tokens as u64, Ordering::Relaxed);
        self.stats.last_batch.store(items.len(), Ordering::Relaxed);
        for it in &items {
            // Nothing generated yet: this is a prompt chunk.
            if self.slots[it.slot]
                .seq
                .as_ref()
                .is_some_and(|q| q.generated == 0)
            {
                self.stats
                    .prompt_tokens
                    .fetch_add(it.n as u64, Ordering::Relaxed);
            }
        }
        self.step += 1;

        // One pass over the weights for every sequence in the step.
        let engine = Arc::clone(&self.engine);
        let logits = {
            let mut n_of = vec![0; self.slots.len()];
            for it in &items {
                n_of[it.slot] = it.n;
            }
            let mut steps: Vec<SeqStep<'_>> = Vec::with_capacity(items.len());
            for (i, slot) in self.slots.iter_mut().enumerate() {
                if n_of[i] == 0 {
                    continue;
                }
                let pos = slot.kv.len();
                steps.push(SeqStep {
                    tokens: &slot.tokens[pos..pos + n_of[i]],
                    pos,
                    kv: &mut slot.kv,
                    // Every sequence gets one row; a mid-prompt chunk's is ignored.
                    logits: Logits::Last,
                });
            }
            engine
                .model
                .forward_multi(&engine.pool, &mut self.scratch, &mut steps)
                .map_err(|e| e.to_string())?
                .to_vec()
        };
        // forward_multi ran in slot order; items were planned in a different order.
        let mut order: Vec<&Item> = items.iter().collect();
        order.sort_by_key(|it| it.slot);
        let n_vocab = self.engine.model.cfg.n_vocab;
        for (row, it) in order.into_iter().enumerate() {
            let Some(l) = logits.get(row * n_vocab..(row + 1) * n_vocab) else {
                return Err(format!(
                    "forward_multi returned {} logits rows for {} sequences",
                    logits.len() / n_vocab.max(1),
                    items.len()
                ));
            };
            if !it.logits {
                continue;
            }
            self.row.clear();
            self.row.extend_from_slice(l);
            self.sample_into(it.slot);
        }
        Ok(())
    }

    /// Samples the next token of the sequence in `slot` from `self.row`.
    fn sample_into(&mut self, i: usize) {
        let tk = &self.engine.tokenizer;
        let slot = &mut self.slots[i];
        let Some(seq) = slot.seq.as_mut() else {
            return;
        };
        if let Some(c) = seq.req.constraint.as_mut() {
            if let Err(e) = c.mask(&mut self.row) {
                let msg = format!("constrained decoding failed: {e}");
                seq.req.sink.send(Event::Failed(msg));
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.release(i, false);
                return;
            }
        }
        // Logprobs describe the model's (masked) distribution, before penalties.
        let lp_info = seq.req.logprobs.map(|k| {
            let top = llmos_sample::top_logprobs(&self.row, k);
            (log_sum_exp(&self.row), top, self.row.clone())
        });
        let tok = match seq.sampler.sample(&mut self.row, &slot.tokens) {
            Ok(t) => t,
            Err(e) => {
                seq.req.sink.send(Event::Failed(e.to_string()));
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.release(i, false);
                return;
            }
        };
        self.stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
        if tk.is_eog(tok) {
            // The mask only allows an end token where the grammar may end.
            self.finish(i, Finish::Eog);
            return;
        }
        let mut constraint_done = false;
        if let Some(c) = seq.req.constraint.as_mut() {
            if let Err(e) = c.commit(tok) {
                let msg = format!("constrained decoding failed: {e}");
                seq.req.sink.send(Event::Failed(msg));
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.release(i, false);
                return;
            }
            constraint_done = c.is_finished();
        }
        seq.generated += 1;
        slot.tokens.push(tok);
        let logprobs = match lp_info {
            Some((lse, top, raw)) => {
                let logprob = raw
                    .get(tok as usize)
                    .map_or(f32::NEG_INFINITY, |&l| l - lse);
                vec![TokenLogprob {
                    token: tok,
                    bytes: tk.token_bytes(tok).to_vec(),
                    logprob,
                    top: top
                        .into_iter()
                        .map(|(t, lp)| (t, tk.token_bytes(t).to_vec(), lp))
                        .collect(),
                }]
            }
            None => Vec::new(),
        };
        let mut hit = false;
        let mut text = String::new();
        if !tk.is_control(tok) {
            let piece = seq.decoder.push(tk, tok);
            let (emit, h) = seq.stops.push(&piece);
            text = emit;
            hit = h;
        }
        if (!text.is_empty() || !logprobs.is_empty())
            && !seq.req.sink.send(Event::Delta { text, logprobs })
        {
            self.finish(i, Finish::Cancelled);
            return;
        }
        let seq_generated = seq.generated;
        let max_tokens = seq.req.max_tokens;
        if hit {
            self.finish(i, Finish::Stop);
        } else if constraint_done {
            // The grammar is complete: nothing more may follow.
            self.finish(i, Finish::Stop);
        } else if seq_generated >= max_tokens {
            self.finish(i, Finish::Length);
        } else if slot.tokens.len() >= self.cfg.n_ctx {
            self.finish(i, Finish::ContextFull);
        }
    }

    /// Ends the sequence in slot `i`: flushes held-back text, sends Done.
    fn finish(&mut self, i: usize, finish: Finish) {
        let slot = &mut self.slots[i];
        let Some(seq) = slot.seq.as_mut() else {
            return;
        };
        if finish != Finish::Stop && finish != Finish::Cancelled {
            let mut rest = seq.stops.flush();
            rest.push_str(&seq.decoder.finish());
            if !rest.is_empty() {
                seq.req.sink.send(Event::Delta {
                    text: rest,
                    logprobs: Vec::new(),
                });
            }
        }
        let mut usage = seq.usage;
        usage.completion_tokens = seq.generated;
        seq.req.sink.send(Event::Done { finish, usage });
        if finish == Finish::Cancelled {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.finished.fetch_add(1, Ordering::Relaxed);
        }
        self.release(i, true);
    }

    /// Frees slot `i`. Its cached tokens stay for prefix reuse when `keep`.
    fn release(&mut self, i: usize, keep: bool) {
        let slot = &mut self.slots[i];
        slot.seq = None;
        // Only tokens whose keys and values are in the cache can be reused.
        let n = if keep {
            slot.kv.len().min(slot.tokens.len())
        } else {
            0
        };
        slot.tokens.truncate(n);
        slot.kv.truncate(n);
    }

    /// A model error: every running sequence fails, and its cache is dropped.
    fn fail_all(&mut self, e: &str) {
        for i in 0..self.slots.len() {
            if let Some(seq) = self.slots[i].seq.as_mut() {
                seq.req
                    .sink
                    .send(Event::Failed(format!("model error: {e}")));
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.release(i, false);
            }
        }
    }

    fn publish(&self) {
        let (mut active, mut cells_active, mut cells_cached) = (0, 0, 0);
        for s in &self.slots {
            if s.seq.is_some() {
                active += 1;
                cells_active += s.kv.len();
            } else {
                cells_cached += s.kv.len();
            }
        }
        self.stats.active.store(active, Ordering::Relaxed);
        self.stats
            .kv_cells_active
            .store(cells_active, Ordering::Relaxed);
        self.stats
            .kv_cells_cached
            .store(cells_cached, Ordering::Relaxed);
    }
}

/// Shortest prefix worth copying from another slot rather than prefilling.
const MIN_COPY: usize = 16;

/// Mutable `slots[a]` and shared `slots[b]`, `a != b`.
fn two_slots(slots: &mut [Slot], a: usize, b: usize) -> (&mut Slot, &Slot) {
    if a < b {
        let (x, y) = slots.split_at_mut(b);
        (&mut x[a], &y[0])
    } else {
        let (x, y) = slots.split_at_mut(a);
        (&mut y[0], &x[b])
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// log(sum(exp(row))), computed stably.
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&l| ((l - max) as f64).exp()).sum();
    (max as f64 + sum.ln()) as f32
}
