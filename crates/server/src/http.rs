//! Routes and handlers: requests are parsed and checked on the async
//! runtime, prompts rendered and tokenized on the blocking pool, and
//! generation runs on the engine's scheduler thread; events come back
//! through one unbounded channel per request.

use crate::api::{self, ChatJob, CompletionJob, GenOpts, PromptInput, ToolMode};
use crate::constrain;
use crate::error::ApiError;
use crate::metrics::{counter, gauge};
use crate::{AppState, ModelEntry};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use llmos_engine::batch::{
    Event, SeqRequest, SeqUsage, Sink, SubmitError, TokenConstraint, TokenLogprob,
};
use llmos_engine::Finish;
use llmos_sample::SamplerConfig;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

type Shared = Arc<AppState>;

/// Sends a sequence's events, tagged with its choice index.
struct ChanSink {
    index: usize,
    tx: mpsc::UnboundedSender<(usize, Event)>,
}

impl Sink for ChanSink {
    fn send(&mut self, ev: Event) -> bool {
        self.tx.send((self.index, ev)).is_ok()
    }
    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn new_id(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{prefix}-{:x}{n:04x}", t & 0xffff_ffff_ffff)
}

/// The body, or the extractor's rejection (e.g. over the size limit) as an
/// OpenAI error.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is larger than this server accepts (--max-body)".to_string()
        } else {
            format!("could not read the request body: {e}")
        };
        ApiError::invalid(msg)
            .with_status(if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            })
            .with_code(if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body_too_large"
            } else {
                "bad_body"
            })
    })
}

pub(crate) fn find_model<'a>(st: &'a AppState, name: &str) -> Result<&'a ModelEntry, ApiError> {
    st.models.iter().find(|m| m.name == name).ok_or_else(|| {
        let known: Vec<String> = st.models.iter().map(|m| m.name.clone()).collect();
        ApiError::unknown_model(name, &known)
    })
}

/// Resolves `max_tokens` against the context: an explicit value that does not
/// fit is a 400; an absent one is whatever the context leaves.
fn fit_context(
    n_prompt: usize,
    max_tokens: Option<usize>,
    n_ctx: usize,
    limit: usize,
    param: &str,
) -> Result<usize, ApiError> {
    let too_long = |m: usize| {
        ApiError::param(
            param,
            format!(
                "this model's context holds {n_ctx} tokens, but the prompt is {n_prompt} tokens and {param} is {m} \
                 ({} in all); shorten the prompt or lower {param} (the server's --ctx sets the context)",
                n_prompt + m
            ),
        )
        .with_code("context_length_exceeded")
    };
    match max_tokens {
        Some(m) if n_prompt + m > n_ctx => Err(too_long(m)),
        Some(m) => Ok(m),
        None if n_prompt >= n_ctx => Err(ApiError::param(
            "messages",
            format!("this model's context holds {n_ctx} tokens, but the prompt alone is {n_prompt} tokens"),
        )
        .with_code("context_length_exceeded")),
        None => Ok((n_ctx - n_prompt).min(limit)),
    }
}

pub(crate) fn sampler_for(g: &GenOpts, choice: usize) -> SamplerConfig {
    let seed = g.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    SamplerConfig {
        temperature: g.temperature,
        top_k: g.top_k,
        top_p: g.top_p,
        min_p: g.min_p,
        repeat_penalty: g.repeat_penalty,
        presence_penalty: g.presence_penalty,
        frequency_penalty: g.frequency_penalty,
        penalty_last_n: 64,
        // Choices of one request differ; the same seed gives the same choices.
        seed: seed.wrapping_add(choice as u64),
    }
}

/// One sequence to submit.
struct Job {
    prompt: Vec<u32>,
    max_tokens: usize,
    constraint: Option<Box<dyn TokenConstraint>>,
}

/// Submits every sequence of a request; all or none.
fn submit(
    st: &AppState,
    m: &ModelEntry,
    jobs: Vec<Job>,
    g: &GenOpts,
) -> Result<mpsc::UnboundedReceiver<(usize, Event)>, ApiError> {
    let (tx, rx) = mpsc::unbounded_channel();
    for (i, job) in jobs.into_iter().enumerate() {
        let req = SeqRequest {
            prompt: job.prompt,
            max_tokens: job.max_tokens,
            sampler: sampler_for(g, i),
            stop: g.stop.clone(),
            logprobs: g.logprobs,
            constraint: job.constraint,
            sink: Box::new(ChanSink {
                index: i,
                tx: tx.clone(),
            }),
        };
        if let Err(e) = m.batcher.submit(req) {
            // Dropping rx cancels whatever was already queued.
            return Err(submit_error(st, e));
        }
    }
    Ok(rx)
}

/// What the client hears when the scheduler refuses a sequence.
pub(crate) fn submit_error(st: &AppState, e: SubmitError) -> ApiError {
    match e {
        SubmitError::QueueFull { .. } => {
            st.metrics.rejected_busy.fetch_add(1, Ordering::Relaxed);
            ApiError::busy(format!("{e}"), 1)
        }
        SubmitError::TooLong { .. } | SubmitError::EmptyPrompt => {
            ApiError::invalid(e.to_string()).with_code("context_length_exceeded")
        }
        SubmitError::Stopped => ApiError::internal(e.to_string()),
    }
}

/// Everything one choice produced, for non-streaming answers.
#[derive(Default)]
struct Collected {
    text: String,
    logprobs: Vec<TokenLogprob>,
    finish: Option<Finish>,
    usage: SeqUsage,
}

/// Waits for every choice to finish.
async fn collect(
    st: &AppState,
    mut rx: mpsc::UnboundedReceiver<(usize, Event)>,
    n: usize,
    t0: Instant,
) -> Result<Vec<Collected>, ApiError> {
    let mut out: Vec<Collected> = (0..n).map(|_| Collected::default()).collect();
    let mut done = 0;
    let mut first = true;
    while done < n {
        let Some((i, ev)) = rx.recv().await else {
            return Err(ApiError::internal(
                "the engine stopped before the answer was complete",
            ));
        };
        let Some(c) = out.get_mut(i) else { continue };
        match ev {
            Event::Delta { text, logprobs } => {
                if first && !text.is_empty() {
                    first = false;
                    st.metrics.ttft_seconds.observe(t0.elapsed().as_secs_f64());
                }
                c.text.push_str(&text);
                c.logprobs.extend(logprobs);
            }
            Event::Done { finish, usage } => {
                c.finish = Some(finish);
                c.usage = usage;
                done += 1;
            }
            Event::Failed(msg) => return Err(ApiError::internal(msg)),
        }
    }
    st.metrics
        .request_seconds
        .observe(t0.elapsed().as_secs_f64());
    Ok(out)
}

pub(crate) fn usage_json(us: &[SeqUsage]) -> Value {
    // n choices share one prompt: count it once, as OpenAI does.
    let prompt = us.first().map_or(0, |u| u.prompt_tokens);
    let cached = us.first().map_or(0, |u| u.cached_tokens);
    let completion: usize = us.iter().map(|u| u.completion_tokens).sum();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

fn token_str(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn chat_logprobs(lps: &[TokenLogprob]) -> Value {
    let content: Vec<Value> = lps
        .iter()
        .map(|t| {
            json!({
                "token": token_str(&t.bytes),
                "logprob": t.logprob,
                "bytes": t.bytes,
                "top_logprobs": t.top.iter().map(|(_, b, lp)| json!({
                    "token": token_str(b), "logprob": lp, "bytes": b,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "content": content })
}

fn completion_logprobs(lps: &[TokenLogprob], start_offset: usize) -> Value {
    let mut offset = start_offset;
    let mut offsets = Vec::new();
    for t in lps {
        offsets.push(offset);
        offset += token_str(&t.bytes).len();
    }
    json!({
        "tokens": lps.iter().map(|t| token_str(&t.bytes)).collect::<Vec<_>>(),
        "token_logprobs": lps.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": lps.iter().map(|t| {
            let mut m = serde_json::Map::new();
            for (_, b, lp) in &t.top { m.insert(token_str(b), json!(lp)); }
            Value::Object(m)
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

fn finish_str(f: Option<Finish>) -> &'static str {
    f.map_or("stop", Finish::as_str)
}

/// Splits generated text into content and OpenAI tool calls.
fn tool_split(
    text: &str,
    mode: &ToolMode,
    job_tools: Option<&Value>,
) -> (Option<String>, Vec<Value>) {
    if *mode == ToolMode::None || job_tools.is_none() {
        return (Some(text.to_string()), Vec::new());
    }
    let parsed = constrain::parse_tool_calls(text, job_tools);
    let calls = parsed
        .1
        .into_iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    (parsed.0, calls)
}

// ---------------------------------------------------------------- handlers

pub async fn chat_completions(
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = chat_inner(&st, body).await;
    respond(&st, "chat_completions", r)
}

fn respond(st: &AppState, ep: &'static str, r: Result<Response, ApiError>) -> Response {
    let resp = match r {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    st.metrics.count_request(ep, resp.status().as_u16());
    resp
}

async fn chat_inner(
    st: &Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let t0 = Instant::now();
    let body = body_bytes(body)?;
    let req: api::ChatRequest = api::parse_json(&body)?;
    let job = api::validate_chat(req, &st.limits)?;
    let m = find_model(st, &job.model)?;
    if job.agent.is_some() {
        return crate::agent::chat(st, m, job, t0).await;
    }
    let engine = Arc::clone(&m.engine);
    let (messages, tools) = (job.messages.clone(), job.tools.clone());
    let prompt = tokio::task::spawn_blocking(move || -> Result<Vec<u32>, ApiError> {
        let t = engine.template.as_ref().ok_or_else(|| {
            ApiError::invalid("this model has no chat template; use /v1/completions")
        })?;
        let rejected = |e: llmos_text::TextError| {
            ApiError::param(
                "messages",
                format!("the chat template rejected the conversation: {e}"),
            )
        };
        let mut text = t
            .render(&messages, true, tools.as_ref())
            .map_err(rejected)?;
        if tools.is_some() && text == t.render(&messages, true, None).map_err(rejected)? {
            // The template ignores `tools`: describe them in the system message.
            let mut msgs = messages.clone();
            let desc = constrain::tools_prompt(tools.as_ref());
            match msgs.first_mut() {
                Some(m) if m.role == "system" => m.content = format!("{}\n\n{desc}", m.content),
                _ => msgs.insert(0, llmos_text::Message::new("system", desc)),
            }
            text = t.render(&msgs, true, None).map_err(rejected)?;
        }
        Ok(engine.encode_prompt(&text, true))
    })
    .await
    .map_err(|e| ApiError::internal(format!("prompt rendering panicked: {e}")))??;
    let (mt_param, n_ctx) = ("max_tokens", m.batcher.config().n_ctx);
    let max_tokens = fit_context(
        prompt.len(),
        job.gen.max_tokens,
        n_ctx,
        st.limits.max_tokens,
        mt_param,
    )?;
    let mut jobs = Vec::with_capacity(job.gen.n);
    for _ in 0..job.gen.n {
        jobs.push(Job {
            prompt: prompt.clone(),
            max_tokens,
            constraint: constrain::for_chat(m, &job, st.tool_grammar)?,
        });
    }
    let rx = submit(st, m, jobs, &job.gen)?;
    let id = new_id("chatcmpl");
    if job.gen.stream {
        return Ok(chat_stream(Arc::clone(st), m.name.clone(), id, job, rx, t0));
    }
    let choices = collect(st, rx, job.gen.n, t0).await?;
    let usage = usage_json(&choices.iter().map(|c| c.usage).collect::<Vec<_>>());
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (content, calls) = tool_split(&c.text, &job.tool_mode, job.tools.as_ref());
            let mut msg = json!({"role": "assistant", "content": content});
            let mut finish = finish_str(c.finish);
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
                finish = "tool_calls";
            }
            json!({
                "index": i,
                "message": msg,
                "logprobs": if job.gen.logprobs.is_some() { chat_logprobs(&c.logprobs) } else { Value::Null },
                "finish_reason": finish,
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": m.name,
        "system_fingerprint": crate::FINGERPRINT,
        "choices": choices,
        "usage": usage,
    }))
    .into_response())
}

/// An SSE response fed by a task that turns engine events into chunks. The
/// task ends when the client goes away, which drops the engine receiver and
/// cancels the sequences at the next step.
pub(crate) fn sse_response(
    produce: impl FnOnce(mpsc::Sender<SseEvent>) -> tokio::task::JoinHandle<()>,
) -> Response {
    let (tx, rx) = mpsc::channel::<SseEvent>(64);
    let _task = produce(tx);
    let body = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    sse(body).into_response()
}

fn sse<S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static>(s: S) -> Sse<S> {
    Sse::new(s)
}

pub(crate) fn data(v: &Value) -> SseEvent {
    SseEvent::default().data(v.to_string())
}

/// Next engine event, or None when the client has gone (or the engine ended).
async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<(usize, Event)>,
    out: &mpsc::Sender<SseEvent>,
) -> Option<(usize, Event)> {
    tokio::select! {
        ev = rx.recv() => ev,
        _ = out.closed() => None,
    }
}

fn chat_stream(
    st: Shared,
    model: String,
    id: String,
    job: ChatJob,
    mut rx: mpsc::UnboundedReceiver<(usize, Event)>,
    t0: Instant,
) -> Response {
    sse_response(move |out| {
        tokio::spawn(async move {
            let n = job.gen.n;
            let created = now_secs();
            let with_usage = job.gen.include_usage;
            // Tool calls are parsed from the whole text, so with tools the
            // text is held back until the choice ends.
            let hold = job.tool_mode != ToolMode::None && job.tools.is_some();
            let chunk = |choices: Value| {
                let mut c = json!({
                    "id": id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": crate::FINGERPRINT, "choices": choices,
                });
                if with_usage {
                    c["usage"] = Value::Null;
                }
                c
            };
            for i in 0..n {
                let c = chunk(
                    json!([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
                );
                if out.send(data(&c)).await.is_err() {
                    return;
                }
            }
            let mut held: Vec<String> = vec![String::new(); n];
            let mut usages = vec![SeqUsage::default(); n];
            let (mut done, mut first) = (0, true);
            while done < n {
                let Some((i, ev)) = next_event(&mut rx, &out).await else {
                    return; // client gone: dropping rx cancels the sequences
                };
                if i >= n {
                    continue;
                }
                let c = match ev {
                    Event::Delta { text, logprobs } => {
                        if first && !text.is_empty() {
                            first = false;
                            st.metrics.ttft_seconds.observe(t0.elapsed().as_secs_f64());
                        }
                        if hold {
                            held[i].push_str(&text);
                            continue;
                        }
                        let lp = if job.gen.logprobs.is_some() {
                            chat_logprobs(&logprobs)
                        } else {
                            Value::Null
                        };
                        chunk(
                            json!([{"index": i, "delta": {"content": text}, "logprobs": lp, "finish_reason": null}]),
                        )
                    }
                    Event::Done { finish, usage } => {
                        done += 1;
                        usages[i] = usage;
                        let mut finish = finish.as_str();
                        if hold {
                            let (content, calls) =
                                tool_split(&held[i], &job.tool_mode, job.tools.as_ref());
                            let mut delta = json!({});
                            if let Some(t) = content.filter(|t| !t.is_empty()) {
                                delta["content"] = json!(t);
                            }
                            if !calls.is_empty() {
                                finish = "tool_calls";
                                let calls: Vec<Value> = calls
                                    .into_iter()
                                    .enumerate()
                                    .map(|(k, mut c)| {
                                        c["index"] = json!(k);
                                        c
                                    })
                                    .collect();
                                delta["tool_calls"] = Value::Array(calls);
                            }
                            let c = chunk(
                                json!([{"index": i, "delta": delta, "logprobs": null, "finish_reason": null}]),
                            );
                            if out.send(data(&c)).await.is_err() {
                                return;
                            }
                        }
                        chunk(
                            json!([{"index": i, "delta": {}, "logprobs": null, "finish_reason": finish}]),
                        )
                    }
                    Event::Failed(msg) => {
                        let e = ApiError::internal(msg);
                        let _ = out.send(data(&e.body())).await;
                        return;
                    }
                };
                if out.send(data(&c)).await.is_err() {
                    return;
                }
            }
            st.metrics
                .request_seconds
                .observe(t0.elapsed().as_secs_f64());
            if with_usage {
                let mut c = chunk(json!([]));
                c["usage"] = usage_json(&usages);
                if out.send(data(&c)).await.is_err() {
                    return;
                }
            }
            let _ = out.send(SseEvent::default().data("[DONE]")).await;
        })
    })
}

pub async fn completions(
    State(st): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = completions_inner(&st, body).await;
    respond(&st, "completions", r)
}

async fn completions_inner(
    st: &Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let t0 = Instant::now();
    let body = body_bytes(body)?;
    let req: api::CompletionRequest = api::parse_json(&body)?;
    let job: CompletionJob = api::validate_completion(req, &st.limits)?;
    let m = find_model(st, &job.model)?;
    let engine = Arc::clone(&m.engine);
    let prompts = job.prompts.clone();
    let n_vocab = m.engine.model.cfg.n_vocab;
    let encoded = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u32>>, ApiError> {
        prompts
            .into_iter()
            .enumerate()
            .map(|(i, p)| match p {
                PromptInput::Text(t) => Ok(engine.encode_prompt(&t, false)),
                PromptInput::Tokens(ids) => match ids.iter().find(|&&t| t as usize >= n_vocab) {
                    Some(bad) => Err(ApiError::param(
                        "prompt",
                        format!(
                            "prompt {i}: token id {bad} is outside the vocabulary (0..{n_vocab})"
                        ),
                    )),
                    None => Ok(ids),
                },
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::internal(format!("tokenizing panicked: {e}")))??;
    let n_ctx = m.batcher.config().n_ctx;
    let mut jobs = Vec::new();
    for p in &encoded {
        if p.is_empty() {
            return Err(ApiError::param(
                "prompt",
                "the prompt is empty: there is nothing to continue",
            ));
        }
        let max_tokens = fit_context(
            p.len(),
            job.gen.max_tokens,
            n_ctx,
            st.limits.max_tokens,
            "max_tokens",
        )?;
        for _ in 0..job.gen.n {
            jobs.push(Job {
                prompt: p.clone(),
                max_tokens,
                constraint: None,
            });
        }
    }
    let total = jobs.len();
    let rx = submit(st, m, jobs, &job.gen)?;
    let id = new_id("cmpl");
    if job.gen.stream {
        let (st2, model, gen) = (Arc::clone(st), m.name.clone(), job.gen.clone());
        return Ok(sse_response(move |out| {
            tokio::spawn(async move {
                let mut rx = rx;
                let created = now_secs();
                let chunk = |choices: Value| {
                    let mut c = json!({"id": id, "object": "text_completion", "created": created, "model": model, "choices": choices});
                    if gen.include_usage {
                        c["usage"] = Value::Null;
                    }
                    c
                };
                let mut usages = vec![SeqUsage::default(); total];
                let mut done = 0;
                while done < total {
                    let Some((i, ev)) = next_event(&mut rx, &out).await else {
                        return;
                    };
                    let c = match ev {
                        Event::Delta { text, logprobs } => {
                            let lp = if gen.logprobs.is_some() {
                                completion_logprobs(&logprobs, 0)
                            } else {
                                Value::Null
                            };
                            chunk(
                                json!([{"index": i, "text": text, "logprobs": lp, "finish_reason": null}]),
                            )
                        }
                        Event::Done { finish, usage } => {
                            done += 1;
                            if let Some(u) = usages.get_mut(i) {
                                *u = usage;
                            }
                            chunk(
                                json!([{"index": i, "text": "", "logprobs": null, "finish_reason": finish.as_str()}]),
                            )
                        }
                        Event::Failed(msg) => {
                            let _ = out.send(data(&ApiError::internal(msg).body())).await;
                            return;
                        }
                    };
                    if out.send(data(&c)).await.is_err() {
                        return;
                    }
                }
                st2.metrics
                    .request_seconds
                    .observe(t0.elapsed().as_secs_f64());
                if gen.include_usage {
                    let mut c = chunk(json!([]));
                    c["usage"] = usage_json(&usages);
                    if out.send(data(&c)).await.is_err() {
                        return;
                    }
                }
                let _ = out.send(SseEvent::default().data("[DONE]")).await;
            })
        }));
    }
    let choices = collect(st, rx, total, t0).await?;
    let usage = usage_json(&choices.iter().map(|c| c.usage).collect::<Vec<_>>());
    let out: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "index": i,
                "text": c.text,
                "logprobs": if job.gen.logprobs.is_some() { completion_logprobs(&c.logprobs, 0) } else { Value::Null },
                "finish_reason": finish_str(c.finish),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id, "object": "text_completion", "created": now_secs(), "model": m.name,
        "system_fingerprint": crate::FINGERPRINT, "choices": out, "usage": usage,
    }))
    .into_response())
}

pub async fn embeddings(State(st): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let r = async {
        let body = body_bytes(body)?;
        let req: api::EmbeddingRequest = api::parse_json(&body)?;
        if let Some(e) = st.embedders.iter().find(|e| e.name == req.model) {
            return crate::embed::handle(e, &body).await;
        }
        let m = find_model(&st, &req.model)?;
        let _ = &req.input;
        Err::<Response, _>(
            ApiError::param(
                "model",
                format!(
                    "model {} does not support embeddings (it is a {} text generation model)",
                    m.name,
                    m.engine.model.cfg.arch.name()
                ),
            )
            .with_code("model_not_supported"),
        )
    }
    .await;
    respond(&st, "embeddings", r)
}

pub async fn models(State(st): State<Shared>) -> Response {
    let data: Vec<Value> = st
        .models
        .iter()
        .map(
            |m| json!({"id": m.name, "object": "model", "created": m.created, "owned_by": "llmos"}),
        )
        .collect();
    respond(
        &st,
        "models",
        Ok(Json(json!({"object": "list", "data": data})).into_response()),
    )
}

pub async fn model_one(
    State(st): State<Shared>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let r = find_model(&st, &name).map(|m| {
        Json(json!({"id": m.name, "object": "model", "created": m.created, "owned_by": "llmos"}))
            .into_response()
    });
    respond(&st, "models", r)
}

pub async fn health(State(st): State<Shared>) -> Response {
    Json(json!({"status": "ok", "models": st.models.iter().map(|m| &m.name).collect::<Vec<_>>()}))
        .into_response()
}

pub async fn metrics(State(st): State<Shared>) -> Response {
    let mut out = String::new();
    st.metrics.write(&mut out);
    for m in &st.models {
        let s = m.batcher.stats();
        let cfg = m.batcher.config();
        let l = format!("{{model=\"{}\"}}", m.name);
        let mut line = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{l} {v}"
            );
        };
        line(
            "llmos_queue_depth",
            "Requests waiting for a slot.",
            "gauge",
            s.queued.load(Ordering::Relaxed) as u64,
        );
        line(
            "llmos_active_sequences",
            "Sequences running in slots.",
            "gauge",
            s.active.load(Ordering::Relaxed) as u64,
        );
        line(
            "llmos_slots",
            "Slots (--parallel).",
            "gauge",
            cfg.slots as u64,
        );
        line(
            "llmos_batch_size",
            "Sequences in the last forward step.",
            "gauge",
            s.last_batch.load(Ordering::Relaxed) as u64,
        );
        line(
            "llmos_kv_cells_in_use",
            "KV cache cells (tokens) held by running sequences.",
            "gauge",
            s.kv_cells_active.load(Ordering::Relaxed) as u64,
        );
        line(
            "llmos_kv_cells_cached",
            "KV cache cells kept in idle slots for prefix reuse.",
            "gauge",
            s.kv_cells_cached.load(Ordering::Relaxed) as u64,
        );
        line(
            "llmos_kv_cells_total",
            "KV cache cells allocated (slots x context).",
            "gauge",
            (cfg.slots * cfg.n_ctx) as u64,
        );
        line(
            "llmos_kv_bytes_per_cell",
            "KV cache bytes per cell, all layers.",
            "gauge",
            m.batcher.kv_bytes_per_cell() as u64,
        );
        line(
            "llmos_steps_total",
            "Forward steps (one pass over the weights each).",
            "counter",
            s.steps.load(Ordering::Relaxed),
        );
        line(
            "llmos_step_sequences_total",
            "Sum over steps of the sequences in the step.",
            "counter",
            s.step_seqs.load(Ordering::Relaxed),
        );
        line(
            "llmos_step_tokens_total",
            "Sum over steps of the tokens in the step.",
            "counter",
            s.step_tokens.load(Ordering::Relaxed),
        );
        line(
            "llmos_prompt_tokens_total",
            "Prompt tokens computed.",
            "counter",
            s.prompt_tokens.load(Ordering::Relaxed),
        );
        line(
            "llmos_prompt_tokens_cached_total",
            "Prompt tokens reused from a slot's cache.",
            "counter",
            s.cached_tokens.load(Ordering::Relaxed),
        );
        line(
            "llmos_prefix_copies_total",
            "Requests that started from a prompt prefix copied from another slot's KV cache.",
            "counter",
            s.prefix_copies.load(Ordering::Relaxed),
        );
        line(
            "llmos_generated_tokens_total",
            "Tokens generated.",
            "counter",
            s.generated_tokens.load(Ordering::Relaxed),
        );
        line(
            "llmos_sequences_finished_total",
            "Sequences that ended normally.",
            "counter",
            s.finished.load(Ordering::Relaxed),
        );
        line(
            "llmos_sequences_cancelled_total",
            "Sequences cancelled (client gone).",
            "counter",
            s.cancelled.load(Ordering::Relaxed),
        );
        line(
            "llmos_sequences_failed_total",
            "Sequences that failed.",
            "counter",
            s.failed.load(Ordering::Relaxed),
        );
    }
    gauge(
        &mut out,
        "llmos_uptime_seconds",
        "Seconds since the server started.",
        st.started.elapsed().as_secs(),
    );
    counter(&mut out, "llmos_models", "Models served.", st.models.len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

pub async fn not_found(State(st): State<Shared>, uri: axum::http::Uri) -> Response {
    respond(
        &st,
        "other",
        Err(ApiError::not_found(format!("no route for {}", uri.path()))),
    )
}

pub async fn method_not_allowed(State(st): State<Shared>) -> Response {
    respond(
        &st,
        "other",
        Err(ApiError::invalid("method not allowed for this path")
            .with_status(StatusCode::METHOD_NOT_ALLOWED)),
    )
}

/// Bearer-token check for everything but /health.
pub async fn auth(
    State(st): State<Shared>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(key) = &st.api_key else {
        return next.run(req).await;
    };
    if req.uri().path() == "/health" || req.method() == axum::http::Method::OPTIONS {
        return next.run(req).await;
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => respond(
            &st,
            "auth",
            Err(ApiError::unauthorized("the API key is not valid")),
        ),
        None => respond(
            &st,
            "auth",
            Err(ApiError::unauthorized(
                "this server needs an API key: send `Authorization: Bearer KEY`",
            )),
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
