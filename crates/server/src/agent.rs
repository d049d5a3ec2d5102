//! The agent loop behind `/v1/chat/completions` (issue 6).
//!
//! A chat request with an `llmos` object (`extra_body={"llmos": {"tools":
//! ["calculator"], "max_steps": 8}}` in OpenAI's Python client) runs
//! `llmos-agent`'s loop, the one `llmos agent` runs, guards and output
//! filter included: the model's calls of built-in tools run here and their
//! results go back into the conversation, until the model answers (the
//! answer is the message's content), hits the step limit or token budget
//! (`finish_reason: "length"`), or calls one of the request's own `tools`:
//! then the response is an ordinary `tool_calls` message holding only those
//! calls, and the client's follow-up request resumes the loop. What happened
//! server-side is in the response's `llmos` object (streamed as it happens
//! in the `llmos` field of chunks).
//!
//! The model generates through the server's scheduler ([`BatchLlm`]), so a
//! turn takes a slot like any request: concurrency limits, the queue,
//! metrics, context limits and cancellation when the client goes all apply.
//! The loop and its tools block, so they run on tokio's blocking pool.

use crate::api::{AgentOpts, ChatJob};
use crate::error::ApiError;
use crate::http::{data, new_id, now_secs, sampler_for, sse_response, submit_error, usage_json};
use crate::{AppState, ModelEntry};
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use axum::Json;
use llmos_agent::guard::{Approval, Verdict};
use llmos_agent::prompt::ChatPrompt;
use llmos_agent::{Agent, AgentError, End, Event, Limits, Llm, Outcome, Turn};
use llmos_engine::batch::{
    Event as SeqEvent, SeqRequest, SeqUsage, Sink, SubmitError, TokenConstraint,
};
use llmos_engine::{EngineError, Finish};
use llmos_sample::SamplerConfig;
use llmos_text::Message;
use llmos_tools::Tool;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Builds the built-in tools a request asked for (fresh for each request,
/// so no two requests share a Python process).
pub type ToolFactory = Arc<dyn Fn(&[String]) -> Result<Vec<Box<dyn Tool>>, String> + Send + Sync>;

/// The built-in tools the operator enabled (`llmos serve` flags).
#[derive(Clone)]
pub struct Builtins {
    pub make: ToolFactory,
    /// Names a request may ask for.
    pub enabled: Vec<String>,
    /// Built-in tools that are not enabled, each with how to enable it
    /// (e.g. `("files", "start llmos serve with --files DIR")`).
    pub disabled: Vec<(String, String)>,
    /// `--browse` hosts: the output filter lets data go only to these.
    pub browse: Vec<String>,
}

impl std::fmt::Debug for Builtins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtins")
            .field("enabled", &self.enabled)
            .field("disabled", &self.disabled)
            .field("browse", &self.browse)
            .finish_non_exhaustive()
    }
}

/// Tokens one model turn may generate (as `llmos agent`).
const TURN_TOKENS: usize = 512;
/// The run's generated-token budget when the request gives no `max_tokens`.
const DEFAULT_BUDGET: usize = 4096;

/// Checks the requested tools against what the operator enabled.
fn check_tools(st: &AppState, o: &AgentOpts) -> Result<(), ApiError> {
    let none = Builtins {
        make: Arc::new(|_| Ok(Vec::new())),
        enabled: Vec::new(),
        disabled: Vec::new(),
        browse: Vec::new(),
    };
    let b = st.builtins.as_ref().unwrap_or(&none);
    for (i, t) in o.tools.iter().enumerate() {
        if b.enabled.contains(t) {
            continue;
        }
        let param = format!("llmos.tools[{i}]");
        return Err(match b.disabled.iter().find(|(n, _)| n == t) {
            Some((_, how)) => ApiError::param(
                param,
                format!("the built-in tool `{t}` is not enabled on this server; {how}"),
            )
            .with_code("tool_not_enabled"),
            None => {
                let mut known: Vec<&str> = b.enabled.iter().map(String::as_str).collect();
                known.extend(b.disabled.iter().map(|(n, _)| n.as_str()));
                ApiError::param(
                    param,
                    format!(
                        "`{t}` is not a built-in tool of this server; the built-in tools are {} (enabled: {})",
                        known.join(", "),
                        if b.enabled.is_empty() { "none".into() } else { b.enabled.join(", ") }
                    ),
                )
                .with_code("unknown_tool")
            }
        });
    }
    Ok(())
}

/// Sets a flag when dropped: the handler's future is dropped when the
/// client goes, and the loop's next model turn is then cancelled.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A sequence's events into a std channel, closed when the request's
/// cancel flag is set.
struct FlagSink {
    tx: std::sync::mpsc::Sender<SeqEvent>,
    cancel: Arc<AtomicBool>,
}

impl Sink for FlagSink {
    fn send(&mut self, ev: SeqEvent) -> bool {
        !self.cancel.load(Ordering::Relaxed) && self.tx.send(ev).is_ok()
    }
    fn is_closed(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// The agent's model: each turn is one sequence on the model's scheduler.
pub(crate) struct BatchLlm {
    st: Arc<AppState>,
    model: usize,
    prompt: ChatPrompt,
    sampler: SamplerConfig,
    stop: Vec<String>,
    cancel: Arc<AtomicBool>,
    /// Summed over the turns.
    usage: SeqUsage,
    /// Why the last turn failed, as the client should hear it.
    failure: Option<ApiError>,
}

impl BatchLlm {
    fn entry(&self) -> &ModelEntry {
        &self.st.models[self.model]
    }

    fn render(&self, messages: &[Message]) -> Result<Vec<u32>, AgentError> {
        let m = self.entry();
        let tmpl = m
            .engine
            .template
            .as_ref()
            .ok_or_else(|| AgentError::Template("the model has no chat template".into()))?;
        let text = self.prompt.render(tmpl, messages)?;
        Ok(m.engine.encode_prompt(&text, true))
    }

    fn fail(&mut self, e: ApiError) -> AgentError {
        let msg = e.message.clone();
        self.failure = Some(e);
        AgentError::Backend(msg)
    }
}

impl Llm for BatchLlm {
    fn n_ctx(&self) -> Option<usize> {
        Some(self.entry().batcher.config().n_ctx)
    }

    fn count_tokens(&mut self, messages: &[Message]) -> Result<usize, AgentError> {
        Ok(self.render(messages)?.len())
    }

    fn count_text(&mut self, text: &str) -> usize {
        self.entry()
            .engine
            .tokenizer
            .encode(text, false, false)
            .len()
    }

    fn turn(
        &mut self,
        messages: &[Message],
        max_tokens: usize,
        tools: bool,
    ) -> Result<Turn, AgentError> {
        let prompt = self.render(messages)?;
        let st = Arc::clone(&self.st);
        let m = &st.models[self.model];
        // As for plain requests: without the tool grammar (--no-tool-grammar)
        // calls are read from free text; a text-only turn is always constrained.
        let constraint: Option<Box<dyn TokenConstraint>> = match &m.grammar {
            Some(vocab) if st.tool_grammar || !tools => {
                Some(Box::new(llmos_grammar::Constraint::new(
                    vocab,
                    &self.prompt.turn_spec(tools, None, messages),
                )?))
            }
            _ => None,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let req = SeqRequest {
            prompt,
            max_tokens,
            sampler: self.sampler.clone(),
            stop: self.stop.clone(),
            logprobs: None,
            constraint,
            sink: Box::new(FlagSink {
                tx,
                cancel: Arc::clone(&self.cancel),
            }),
        };
        match m.batcher.submit(req) {
            Ok(()) => {}
            // The loop ends a run whose conversation outgrew the context.
            Err(SubmitError::TooLong {
                n_prompt, n_ctx, ..
            }) => {
                return Err(AgentError::Engine(EngineError::PromptTooLong {
                    n_prompt,
                    n_ctx,
                    n_ctx_train: m.engine.model.cfg.n_ctx_train,
                }))
            }
            Err(e) => return Err(self.fail(submit_error(&st, e))),
        }
        let mut text = String::new();
        loop {
            match rx.recv() {
                Ok(SeqEvent::Delta { text: t, .. }) => text.push_str(&t),
                Ok(SeqEvent::Done { finish, usage }) => {
                    self.usage.prompt_tokens += usage.prompt_tokens;
                    self.usage.cached_tokens += usage.cached_tokens;
                    self.usage.completion_tokens += usage.completion_tokens;
                    if finish == Finish::Cancelled {
                        return Err(AgentError::Backend(
                            "cancelled: the client went away".into(),
                        ));
                    }
                    return Ok(Turn {
                        text,
                        generated_tokens: usage.completion_tokens,
                        prompt_tokens: usage.prompt_tokens,
                        context_full: finish == Finish::ContextFull,
                    });
                }
                Ok(SeqEvent::Failed(msg)) => return Err(self.fail(ApiError::internal(msg))),
                Err(_) => {
                    return Err(AgentError::Backend(
                        "cancelled: the client went away".into(),
                    ))
                }
            }
        }
    }
}

/// How a run ended, for clients: (`llmos.end`, `finish_reason`).
fn end_names(end: &End) -> (&'static str, &'static str) {
    match end {
        End::FinalAnswer => ("final_answer", "stop"),
        End::ClientCalls(_) => ("client_tool_calls", "tool_calls"),
        End::MaxSteps(_) => ("max_steps", "length"),
        End::TokenBudget(_) => ("token_budget", "length"),
        End::ContextFull => ("context_full", "length"),
    }
}

/// The end in words, with the request's own names for the limits.
fn end_reason(end: &End) -> String {
    match end {
        End::MaxSteps(n) => {
            format!("step limit reached (llmos.max_steps = {n}) before a final answer")
        }
        End::TokenBudget(n) => format!(
            "token budget spent ({n} tokens generated; max_tokens sets the budget) before a final answer"
        ),
        e => e.to_string(),
    }
}

/// One loop event as JSON (`llmos.events` and the chunks' `llmos.event`).
fn event_json(agent: &Agent, ev: &Event) -> Option<Value> {
    Some(match ev {
        Event::Step(n) => json!({"type": "step", "step": n}),
        Event::Thought(t) => json!({"type": "thought", "text": t}),
        Event::Call { name, arguments } => json!({
            "type": "call", "name": name,
            "arguments": arguments,
            "runs_on": if agent.tools.iter().any(|t| t.name() == *name) { "server" } else { "client" },
        }),
        // What the client sees passes the output filter, as in `llmos agent`.
        Event::Result { name, output } => json!({
            "type": "result", "name": name,
            "content": agent.exfil.apply(&output.content).0,
            "is_error": output.is_error, "untrusted": output.untrusted,
        }),
        Event::Guard(d) => json!({
            "type": "guard", "step": d.step, "tool": d.tool,
            "verdict": match d.verdict { Verdict::Allow => "allow", Verdict::Refuse => "refuse", Verdict::Note => "note" },
            "reason": d.reason,
        }),
        Event::Context(b) => {
            json!({"type": "context", "used": b.used, "limit": b.limit, "n_ctx": b.n_ctx})
        }
        Event::Answer(_) | Event::Paged(_) => return None,
    })
}

/// The tool calls of a run that ended on client calls, in OpenAI's shape.
fn client_calls(end: &End) -> Vec<Value> {
    match end {
        End::ClientCalls(calls) => calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect(),
        _ => Vec::new(),
    }
}

/// The summary in the response's (or last chunk's) `llmos` object.
fn summary(o: &Outcome, tools: &[String]) -> Value {
    json!({
        "end": end_names(&o.end).0,
        "reason": end_reason(&o.end),
        "steps": o.steps,
        "generated_tokens": o.generated_tokens,
        "tools": tools,
    })
}

/// Runs `job` through the agent loop (non-streaming: one response; streaming:
/// events as they happen, then the answer).
///
/// # Errors
/// A 400 for tools that are not enabled (before anything runs), a 429 when
/// the scheduler's queue is full, a 500 for model failures.
pub(crate) async fn chat(
    st: &Arc<AppState>,
    m: &ModelEntry,
    job: ChatJob,
    t0: Instant,
) -> Result<Response, ApiError> {
    let Some(opts) = job.agent.clone() else {
        return Err(ApiError::internal("not an agent request"));
    };
    check_tools(st, &opts)?;
    let model = st
        .models
        .iter()
        .position(|e| e.name == m.name)
        .ok_or_else(|| ApiError::internal("model vanished"))?;
    let tmpl = m.engine.template.as_ref().ok_or_else(|| {
        ApiError::invalid("this model has no chat template; the agent loop needs one")
    })?;
    let b = st
        .builtins
        .as_ref()
        .ok_or_else(|| ApiError::internal("no built-in tools"))?;
    let tools = (b.make)(&opts.tools)
        .map_err(|e| ApiError::internal(format!("starting the built-in tools: {e}")))?;
    let mut agent = Agent::new(tools);
    agent.approval = Approval::Deny; // nobody to ask: side effects after untrusted data are refused
    agent.exfil = llmos_agent::exfil::Filter::new(&b.browse);
    agent.client_tools = job
        .tools
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let budget = job
        .gen
        .max_tokens
        .unwrap_or(DEFAULT_BUDGET.min(st.limits.max_tokens));
    agent.limits = Limits {
        max_steps: opts.max_steps,
        token_budget: budget,
        max_turn_tokens: TURN_TOKENS.min(budget),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let llm = BatchLlm {
        st: Arc::clone(st),
        model,
        prompt: ChatPrompt::new(tmpl, agent.tools_json()),
        sampler: sampler_for(&job.gen, 0),
        stop: job.gen.stop.clone(),
        cancel: Arc::clone(&cancel),
        usage: SeqUsage::default(),
        failure: None,
    };
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    let messages = job.messages.clone();
    let run = tokio::task::spawn_blocking(move || {
        let mut llm = llm;
        let mut events = Vec::new();
        let r = agent.run_conversation(&mut llm, messages, &mut |ev| {
            if let Some(v) = event_json(&agent, &ev) {
                let _ = tx.send(v.clone());
                events.push(v);
            }
        });
        (r, events, llm.usage, llm.failure)
    });
    let id = new_id("chatcmpl");
    let names = opts.tools.clone();
    if job.gen.stream {
        return Ok(stream(
            Arc::clone(st),
            m.name.clone(),
            id,
            job,
            names,
            rx,
            run,
            cancel,
            t0,
        ));
    }
    let _cancel = CancelOnDrop(cancel);
    drop(rx);
    let (r, events, usage, failure) = run
        .await
        .map_err(|e| ApiError::internal(format!("the agent loop panicked: {e}")))?;
    let o = r.map_err(|e| failure.unwrap_or_else(|| ApiError::internal(e.to_string())))?;
    st.metrics
        .request_seconds
        .observe(t0.elapsed().as_secs_f64());
    let (_, finish) = end_names(&o.end);
    let mut msg = json!({"role": "assistant", "content": o.answer});
    let calls = client_calls(&o.end);
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    let mut llmos = summary(&o, &names);
    llmos["events"] = Value::Array(events);
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": m.name,
        "system_fingerprint": crate::FINGERPRINT,
        "choices": [{"index": 0, "message": msg, "logprobs": null, "finish_reason": finish}],
        "usage": usage_json(&[usage]),
        "llmos": llmos,
    }))
    .into_response())
}

type RunResult = (
    Result<Outcome, AgentError>,
    Vec<Value>,
    SeqUsage,
    Option<ApiError>,
);

/// The streamed form: a chunk per loop event (an empty delta, the event in
/// the chunk's `llmos.event`: clients that do not know it see nothing), then
/// the answer as content deltas (or the client's tool calls), then the end.
/// The answer is sent once its turn is over, because the output filter
/// must see it whole (a link split over deltas could not be taken back).
#[allow(clippy::too_many_arguments)] // one per piece of the response
fn stream(
    st: Arc<AppState>,
    model: String,
    id: String,
    job: ChatJob,
    names: Vec<String>,
    mut rx: mpsc::UnboundedReceiver<Value>,
    run: tokio::task::JoinHandle<RunResult>,
    cancel: Arc<AtomicBool>,
    t0: Instant,
) -> Response {
    sse_response(move |out| {
        tokio::spawn(async move {
            // The client going away drops this task's future: cancel the loop.
            let _cancel = CancelOnDrop(cancel);
            let created = now_secs();
            let with_usage = job.gen.include_usage;
            let chunk = |delta: Value, finish: Value| {
                let mut c = json!({
                    "id": id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": crate::FINGERPRINT,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                });
                if with_usage {
                    c["usage"] = Value::Null;
                }
                c
            };
            let send = |c: Value| {
                let out = out.clone();
                async move { out.send(data(&c)).await.is_ok() }
            };
            if !send(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            ))
            .await
            {
                return;
            }
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = out.closed() => return,
                };
                let Some(ev) = ev else { break };
                let mut c = chunk(json!({}), Value::Null);
                c["llmos"] = json!({"event": ev});
                if !send(c).await {
                    return;
                }
            }
            let (r, _, usage, failure) = match run.await {
                Ok(x) => x,
                Err(e) => {
                    let e = ApiError::internal(format!("the agent loop panicked: {e}"));
                    let _ = out.send(data(&e.body())).await;
                    return;
                }
            };
            let o = match r {
                Ok(o) => o,
                Err(e) => {
                    let e = failure.unwrap_or_else(|| ApiError::internal(e.to_string()));
                    let _ = out.send(data(&e.body())).await;
                    return;
                }
            };
            st.metrics
                .request_seconds
                .observe(t0.elapsed().as_secs_f64());
            if let Some(answer) = &o.answer {
                for piece in pieces(answer) {
                    if !send(chunk(json!({"content": piece}), Value::Null)).await {
                        return;
                    }
                }
            }
            let calls: Vec<Value> = client_calls(&o.end)
                .into_iter()
                .enumerate()
                .map(|(k, mut c)| {
                    c["index"] = json!(k);
                    c
                })
                .collect();
            if !calls.is_empty() && !send(chunk(json!({"tool_calls": calls}), Value::Null)).await {
                return;
            }
            let mut c = chunk(json!({}), json!(end_names(&o.end).1));
            c["llmos"] = summary(&o, &names);
            if !send(c).await {
                return;
            }
            if with_usage {
                let mut c = chunk(json!({}), Value::Null);
                c["choices"] = json!([]);
                c["usage"] = usage_json(&[usage]);
                if !send(c).await {
                    return;
                }
            }
            let _ = out.send(SseEvent::default().data("[DONE]")).await;
        })
    })
}

/// The answer cut into deltas of a few words each.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut words) = (0, 0);
    for (i, c) in text.char_indices() {
        if c == ' ' || c == '\n' {
            words += 1;
            if words == 4 {
                out.push(&text[start..=i]);
                start = i + 1;
                words = 0;
            }
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_answer_exactly() {
        for t in [
            "",
            "one",
            "a b c d e f g h i",
            "ünï cödé  double  spaces\nand lines ",
        ] {
            assert_eq!(pieces(t).concat(), t);
            assert!(pieces(t).iter().all(|p| !p.is_empty()));
        }
        assert_eq!(pieces("a b c d e").len(), 2);
    }

    #[test]
    fn every_end_has_a_finish_reason_clients_know() {
        for e in [
            End::FinalAnswer,
            End::ClientCalls(Vec::new()),
            End::MaxSteps(2),
            End::TokenBudget(9),
            End::ContextFull,
        ] {
            let (_, finish) = end_names(&e);
            assert!(["stop", "length", "tool_calls"].contains(&finish), "{e:?}");
        }
        assert!(end_reason(&End::MaxSteps(2)).contains("llmos.max_steps = 2"));
    }
}
