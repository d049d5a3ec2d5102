//! OpenAI request bodies: parsing and validation, with no engine involved, so
//! every rule is unit-tested and fuzzed on its own.
//!
//! Parsing is two steps. `serde_path_to_error` over the typed structs gives a
//! 400 naming the field for any wrong type; [`validate_chat`] and
//! [`validate_completion`] then check ranges and cross-field rules (tool
//! history, `top_logprobs` without `logprobs`, ...). Unknown fields are
//! ignored, as OpenAI's own clients send vendor extras.

use crate::error::ApiError;
use llmos_text::Message;
use serde::Deserialize;
use serde_json::Value;

/// Server-side limits that validation enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// Largest `n`.
    pub max_n: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tokens: 4096,
            max_n: 8,
        }
    }
}

// ---------------------------------------------------------------- wire types

#[derive(Deserialize, Debug)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    // Sampling (not #[serde(flatten)]: the path of a bad field would be lost).
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub top_logprobs: Option<u64>,
    #[serde(default)]
    pub tools: Option<Vec<WireTool>>,
    #[serde(default)]
    pub tool_choice: Option<WireToolChoice>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// llmos's extension: run the agent loop with built-in tools
    /// (`extra_body={"llmos": {...}}` in OpenAI's Python client).
    #[serde(default)]
    pub llmos: Option<LlmosOptions>,
}

/// The `llmos` object of a chat request: which built-in tools the server
/// runs for this request, and the loop's step limit. Unknown keys are an
/// error (a misspelt `max_step` would otherwise be silently ignored).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct LlmosOptions {
    pub tools: Vec<String>,
    #[serde(default)]
    pub max_steps: Option<u64>,
}

/// Most model turns one request may ask the loop for.
pub const MAX_AGENT_STEPS: usize = 32;

#[derive(Deserialize, Debug)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Prompt,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub n: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    // Sampling (not #[serde(flatten)]: the path of a bad field would be lost).
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(default)]
    pub min_p: Option<f32>,
    #[serde(default)]
    pub repeat_penalty: Option<f32>,
    /// Completions take a count here (0..=5), not a bool.
    #[serde(default)]
    pub logprobs: Option<u64>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub suffix: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Value,
}

/// Sampling fields shared by both endpoints (plus llama.cpp's extras).
#[derive(Debug, Default)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub top_k: Option<u64>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
}

macro_rules! sampling_of {
    ($r:expr) => {
        Sampling {
            temperature: $r.temperature,
            top_p: $r.top_p,
            seed: $r.seed,
            presence_penalty: $r.presence_penalty,
            frequency_penalty: $r.frequency_penalty,
            top_k: $r.top_k,
            min_p: $r.min_p,
            repeat_penalty: $r.repeat_penalty,
        }
    };
}

#[derive(Deserialize, Debug)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Deserialize, Debug)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize, Debug)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: WireFunctionCall,
}

#[derive(Deserialize, Debug)]
pub struct WireFunctionCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Deserialize, Debug, Clone)]
pub struct WireTool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDef,
}

#[derive(Deserialize, Debug, Clone, serde::Serialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum WireToolChoice {
    Mode(String),
    Named(NamedToolChoice),
}

#[derive(Deserialize, Debug)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: NamedFunction,
}

#[derive(Deserialize, Debug)]
pub struct NamedFunction {
    pub name: String,
}

#[derive(Deserialize, Debug)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub json_schema: Option<JsonSchemaFormat>,
}

#[derive(Deserialize, Debug)]
pub struct JsonSchemaFormat {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

// ----------------------------------------------------------- validated forms

/// Generation settings common to both endpoints, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct GenOpts {
    pub n: usize,
    /// None: whatever the context leaves (capped by the server's limit).
    pub max_tokens: Option<usize>,
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// None: from the clock.
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    /// Some(k): logprobs with k alternatives.
    pub logprobs: Option<usize>,
    pub stream: bool,
    pub include_usage: bool,
}

/// What the assistant may or must do with the tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolMode {
    /// No tools given, or `tool_choice: "none"`.
    None,
    Auto,
    Required,
    Named(String),
}

/// `response_format`, checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    Text,
    JsonObject,
    JsonSchema { schema: Value, strict: bool },
}

/// A checked chat request; the template renders `messages` (+ `tools`).
#[derive(Clone, Debug)]
pub struct ChatJob {
    pub model: String,
    pub messages: Vec<Message>,
    /// The OpenAI `tools` array as the chat template expects it.
    pub tools: Option<Value>,
    pub tool_mode: ToolMode,
    /// Several calls in one answer (OpenAI's default).
    pub parallel_tool_calls: bool,
    pub format: Format,
    pub gen: GenOpts,
    /// Run the agent loop (`llmos` in the request); None: one assistant message.
    pub agent: Option<AgentOpts>,
}

/// The `llmos` extension, checked (whether the server enabled the tools is
/// checked by the handler, which knows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOpts {
    /// Built-in tools, by name, in the request's order, no repeats.
    pub tools: Vec<String>,
    pub max_steps: usize,
}

/// A checked completion request.
#[derive(Clone, Debug)]
pub struct CompletionJob {
    pub model: String,
    pub prompts: Vec<PromptInput>,
    pub gen: GenOpts,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PromptInput {
    Text(String),
    Tokens(Vec<u32>),
}

// ------------------------------------------------------------------- parsing

/// Bytes → a typed request, or a 400 that names the problem.
///
/// # Errors
/// Invalid UTF-8, malformed JSON, a non-object body, or a field of the wrong
/// type (named in `param`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::invalid(format!(
            "the request body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
        .with_code("invalid_utf8"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            ApiError::invalid("the request body is empty; send a JSON object")
                .with_code("invalid_json"),
        );
    }
    // Syntax first, so malformed JSON is reported as such, not as a type error.
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!("the request body is not valid JSON: {e}"))
            .with_code("invalid_json")
    })?;
    if !v.is_object() {
        return Err(ApiError::invalid(format!(
            "the request body must be a JSON object, not {}",
            json_kind(&v)
        ))
        .with_code("invalid_json"));
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            ApiError::invalid(format!("invalid request: {inner}"))
        } else {
            ApiError::param(path.clone(), format!("invalid `{path}`: {inner}"))
        }
        .with_code("invalid_type")
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------- validation

fn range_f32(name: &str, v: Option<f32>, lo: f32, hi: f32, default: f32) -> Result<f32, ApiError> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(x),
        Some(x) => Err(ApiError::param(
            name,
            format!("`{name}` is {x}; it must be between {lo} and {hi}"),
        )),
    }
}

#[allow(clippy::too_many_arguments)] // one per wire field the endpoints share
fn common_gen(
    s: &Sampling,
    n: Option<u64>,
    max_tokens: Option<u64>,
    max_tokens_name: &str,
    stop: Option<&Stop>,
    stream: Option<bool>,
    stream_options: Option<&StreamOptions>,
    limits: &Limits,
) -> Result<GenOpts, ApiError> {
    let n = match n {
        None => 1,
        Some(n) if n >= 1 && n as usize <= limits.max_n => n as usize,
        Some(n) => {
            return Err(ApiError::param(
                "n",
                format!("`n` is {n}; it must be between 1 and {}", limits.max_n),
            ))
        }
    };
    let max_tokens = match max_tokens {
        None => None,
        Some(0) => {
            return Err(ApiError::param(
                max_tokens_name,
                format!("`{max_tokens_name}` must be at least 1"),
            ))
        }
        Some(m) if m as usize <= limits.max_tokens && m <= usize::MAX as u64 => Some(m as usize),
        Some(m) => {
            return Err(ApiError::param(
                max_tokens_name,
                format!(
                    "`{max_tokens_name}` is {m}; this server allows at most {} (--max-tokens)",
                    limits.max_tokens
                ),
            ))
        }
    };
    let stop = match stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    if stop.len() > 4 {
        return Err(ApiError::param(
            "stop",
            format!("`stop` has {} strings; at most 4 are allowed", stop.len()),
        ));
    }
    if stream_options.is_some() && stream != Some(true) {
        return Err(ApiError::param(
            "stream_options",
            "`stream_options` is only allowed when `stream` is true",
        ));
    }
    let top_k = s.top_k.unwrap_or(0);
    Ok(GenOpts {
        n,
        max_tokens,
        temperature: range_f32("temperature", s.temperature, 0.0, 2.0, 1.0)?,
        top_p: match s.top_p {
            Some(p) if p.is_finite() && p > 0.0 && p <= 1.0 => p,
            None => 1.0,
            Some(p) => {
                return Err(ApiError::param(
                    "top_p",
                    format!("`top_p` is {p}; it must be in (0, 1]"),
                ))
            }
        },
        top_k: usize::try_from(top_k).unwrap_or(usize::MAX),
        min_p: range_f32("min_p", s.min_p, 0.0, 1.0, 0.0)?,
        repeat_penalty: match s.repeat_penalty {
            None => 1.0,
            Some(r) if r.is_finite() && r > 0.0 && r <= 10.0 => r,
            Some(r) => {
                return Err(ApiError::param(
                    "repeat_penalty",
                    format!("`repeat_penalty` is {r}; it must be in (0, 10]"),
                ))
            }
        },
        presence_penalty: range_f32("presence_penalty", s.presence_penalty, -2.0, 2.0, 0.0)?,
        frequency_penalty: range_f32("frequency_penalty", s.frequency_penalty, -2.0, 2.0, 0.0)?,
        seed: s.seed.map(|x| x as u64),
        stop,
        logprobs: None,
        stream: stream.unwrap_or(false),
        include_usage: stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

/// Checks a chat request and converts its messages for the chat template.
///
/// # Errors
/// Each rule it breaks, with `param` naming the field.
pub fn validate_chat(r: ChatRequest, limits: &Limits) -> Result<ChatJob, ApiError> {
    if r.max_tokens.is_some() && r.max_completion_tokens.is_some() {
        return Err(ApiError::param(
            "max_tokens",
            "give `max_tokens` or `max_completion_tokens`, not both",
        ));
    }
    let (mt, mt_name) = match r.max_completion_tokens {
        Some(m) => (Some(m), "max_completion_tokens"),
        None => (r.max_tokens, "max_tokens"),
    };
    let mut gen = common_gen(
        &sampling_of!(r),
        r.n,
        mt,
        mt_name,
        r.stop.as_ref(),
        r.stream,
        r.stream_options.as_ref(),
        limits,
    )?;
    gen.logprobs = match (r.logprobs, r.top_logprobs) {
        (Some(true), k) => match k.unwrap_or(0) {
            k @ 0..=20 => Some(k as usize),
            k => {
                return Err(ApiError::param(
                    "top_logprobs",
                    format!("`top_logprobs` is {k}; it must be between 0 and 20"),
                ))
            }
        },
        (_, Some(_)) => {
            return Err(ApiError::param(
                "top_logprobs",
                "`top_logprobs` needs `logprobs: true`",
            ))
        }
        _ => None,
    };
    if r.messages.is_empty() {
        return Err(ApiError::param(
            "messages",
            "`messages` is empty; send at least one message",
        ));
    }

    // Tools.
    let tools = r.tools.unwrap_or_default();
    let mut names = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if t.kind != "function" {
            return Err(ApiError::param(
                format!("tools[{i}].type"),
                format!("tool type `{}` is not supported; use `function`", t.kind),
            ));
        }
        let name = &t.function.name;
        if name.is_empty() || names.contains(name) {
            return Err(ApiError::param(
                format!("tools[{i}].function.name"),
                format!("tool names must be unique and non-empty (`{name}`)"),
            ));
        }
        if let Some(p) = &t.function.parameters {
            if !p.is_object() {
                return Err(ApiError::param(
                    format!("tools[{i}].function.parameters"),
                    "`parameters` must be a JSON Schema object",
                ));
            }
        }
        names.push(name.clone());
    }
    let tool_mode = match (&r.tool_choice, tools.is_empty()) {
        (None, true) => ToolMode::None,
        (None, false) => ToolMode::Auto,
        (Some(WireToolChoice::Mode(m)), _) if m == "none" => ToolMode::None,
        (Some(WireToolChoice::Mode(m)), false) if m == "auto" => ToolMode::Auto,
        (Some(WireToolChoice::Mode(m)), false) if m == "required" => ToolMode::Required,
        (Some(WireToolChoice::Named(n)), false) if n.kind == "function" => {
            if !names.contains(&n.function.name) {
                return Err(ApiError::param(
                    "tool_choice",
                    format!(
                        "`tool_choice` names `{}`, which is not in `tools`",
                        n.function.name
                    ),
                ));
            }
            ToolMode::Named(n.function.name.clone())
        }
        (Some(WireToolChoice::Mode(m)), true) if m == "auto" || m == "required" => {
            return Err(ApiError::param(
                "tool_choice",
                format!("`tool_choice` is `{m}` but no `tools` were given"),
            ))
        }
        (Some(_), true) => {
            return Err(ApiError::param(
                "tool_choice",
                "`tool_choice` names a tool but no `tools` were given",
            ))
        }
        (Some(_), false) => {
            return Err(ApiError::param(
                "tool_choice",
                "`tool_choice` must be `none`, `auto`, `required` or {\"type\": \"function\", \"function\": {\"name\": ...}}",
            ))
        }
    };
    if tool_mode != ToolMode::None && gen.n > 1 {
        return Err(ApiError::param("n", "`n` > 1 is not supported with tools"));
    }

    // Response format.
    let format = match &r.response_format {
        None => Format::Text,
        Some(f) => match f.kind.as_str() {
            "text" => Format::Text,
            "json_object" => Format::JsonObject,
            "json_schema" => {
                let Some(js) = &f.json_schema else {
                    return Err(ApiError::param(
                        "response_format.json_schema",
                        "`response_format` of type `json_schema` needs a `json_schema` object",
                    ));
                };
                let schema = match &js.schema {
                    None => Value::Object(Default::default()),
                    Some(s) if s.is_object() || s.is_boolean() => s.clone(),
                    Some(_) => {
                        return Err(ApiError::param(
                            "response_format.json_schema.schema",
                            "`schema` must be a JSON Schema object",
                        ))
                    }
                };
                let _ = &js.name;
                Format::JsonSchema {
                    schema,
                    strict: js.strict.unwrap_or(false),
                }
            }
            other => {
                return Err(ApiError::param(
                    "response_format.type",
                    format!(
                    "`response_format.type` `{other}` is not one of text, json_object, json_schema"
                ),
                ))
            }
        },
    };
    if format != Format::Text && matches!(tool_mode, ToolMode::Required | ToolMode::Named(_)) {
        return Err(ApiError::param(
            "response_format",
            "`response_format` cannot be combined with a forced tool call",
        ));
    }

    let agent = match r.llmos {
        None => None,
        Some(o) => Some(validate_agent(o, &names, &tool_mode, &format, &gen)?),
    };

    let messages = convert_messages(r.messages)?;
    let tools_json = if tool_mode == ToolMode::None || tools.is_empty() {
        None
    } else {
        Some(Value::Array(
            tools
                .iter()
                .map(|t| serde_json::json!({"type": "function", "function": t.function}))
                .collect(),
        ))
    };
    Ok(ChatJob {
        model: r.model,
        messages,
        tools: tools_json,
        tool_mode,
        parallel_tool_calls: r.parallel_tool_calls.unwrap_or(true),
        format,
        gen,
        agent,
    })
}

/// Checks the `llmos` object against the rest of the request: the loop
/// makes one choice, in text, and decides itself when to call a tool.
fn validate_agent(
    o: LlmosOptions,
    client_tools: &[String],
    tool_mode: &ToolMode,
    format: &Format,
    gen: &GenOpts,
) -> Result<AgentOpts, ApiError> {
    if o.tools.is_empty() {
        return Err(ApiError::param(
            "llmos.tools",
            "`llmos.tools` is empty; name the built-in tools the server should run (e.g. [\"calculator\"])",
        ));
    }
    for (i, t) in o.tools.iter().enumerate() {
        if o.tools[..i].contains(t) {
            return Err(ApiError::param(
                format!("llmos.tools[{i}]"),
                format!("`llmos.tools` names `{t}` twice"),
            ));
        }
        if let Some(j) = client_tools.iter().position(|c| c == t) {
            return Err(ApiError::param(
                format!("tools[{j}].function.name"),
                format!("the client tool `{t}` has the name of a built-in tool in `llmos.tools`; rename one of them"),
            ));
        }
    }
    let max_steps = match o.max_steps {
        None => 8,
        Some(n) if (1..=MAX_AGENT_STEPS as u64).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::param(
                "llmos.max_steps",
                format!("`llmos.max_steps` is {n}; it must be between 1 and {MAX_AGENT_STEPS}"),
            ))
        }
    };
    let conflict = |param: &str, what: &str| {
        Err(ApiError::param(
            param,
            format!("{what} cannot be combined with `llmos.tools` (the agent loop answers in text and chooses its own calls)"),
        ))
    };
    if gen.n > 1 {
        return conflict("n", "`n` > 1");
    }
    if *format != Format::Text {
        return conflict("response_format", "`response_format`");
    }
    if gen.logprobs.is_some() {
        return conflict("logprobs", "`logprobs`");
    }
    if matches!(tool_mode, ToolMode::Required | ToolMode::Named(_)) {
        return conflict("tool_choice", "a forced `tool_choice`");
    }
    Ok(AgentOpts {
        tools: o.tools,
        max_steps,
    })
}

/// OpenAI messages → template messages. Checks roles and that every tool
/// result answers an earlier, still-open tool call.
fn convert_messages(wire: Vec<WireMessage>) -> Result<Vec<Message>, ApiError> {
    let mut out = Vec::with_capacity(wire.len());
    // Tool calls made by the last assistant turn and not yet answered.
    let mut open: Vec<String> = Vec::new();
    for (i, m) in wire.into_iter().enumerate() {
        let p = |f: &str| format!("messages[{i}].{f}");
        let text = match m.content {
            None => None,
            Some(Content::Text(t)) => Some(t),
            Some(Content::Parts(parts)) => {
                let mut s = String::new();
                for (j, part) in parts.iter().enumerate() {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(t)) => s.push_str(t),
                        ("text", None) => {
                            return Err(ApiError::param(
                                format!("messages[{i}].content[{j}].text"),
                                "a text part needs `text`",
                            ))
                        }
                        (k, _) => {
                            return Err(ApiError::param(
                                format!("messages[{i}].content[{j}].type"),
                                format!("content parts of type `{k}` are not supported; this server reads text only"),
                            ))
                        }
                    }
                }
                Some(s)
            }
        };
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant" | "tool") => r,
            other => {
                return Err(ApiError::param(
                    p("role"),
                    format!(
                        "role `{other}` is not one of system, developer, user, assistant, tool"
                    ),
                ))
            }
        };
        if role != "tool" && !open.is_empty() {
            return Err(ApiError::param(
                p("role"),
                format!(
                    "the assistant's tool calls {} have no `tool` message answering them",
                    open.join(", ")
                ),
            )
            .with_code("tool_call_mismatch"));
        }
        let mut msg = Message::new(role, text.clone().unwrap_or_default());
        match role {
            "assistant" => {
                if let Some(calls) = m.tool_calls.filter(|c| !c.is_empty()) {
                    let mut tc = Vec::new();
                    for (j, c) in calls.into_iter().enumerate() {
                        if c.kind.as_deref().is_some_and(|k| k != "function") {
                            return Err(ApiError::param(
                                format!("messages[{i}].tool_calls[{j}].type"),
                                "tool calls must be of type `function`",
                            ));
                        }
                        // Templates (Qwen's among them) expect arguments as an object.
                        let args: Value =
                            serde_json::from_str(&c.function.arguments).map_err(|e| {
                                ApiError::param(
                                    format!("messages[{i}].tool_calls[{j}].function.arguments"),
                                    format!("tool call arguments must be a JSON string: {e}"),
                                )
                            })?;
                        if c.id.is_empty() || open.contains(&c.id) {
                            return Err(ApiError::param(
                                format!("messages[{i}].tool_calls[{j}].id"),
                                "tool call ids must be unique and non-empty",
                            ));
                        }
                        open.push(c.id.clone());
                        tc.push(serde_json::json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.function.name, "arguments": args},
                        }));
                    }
                    msg.tool_calls = Some(Value::Array(tc));
                } else if text.is_none() {
                    return Err(ApiError::param(
                        p("content"),
                        "an assistant message needs `content` or `tool_calls`",
                    ));
                }
            }
            "tool" => {
                let Some(id) = m.tool_call_id else {
                    return Err(ApiError::param(
                        p("tool_call_id"),
                        "a `tool` message needs `tool_call_id`",
                    )
                    .with_code("tool_call_mismatch"));
                };
                let Some(k) = open.iter().position(|o| *o == id) else {
                    return Err(ApiError::param(
                        p("tool_call_id"),
                        format!("`tool_call_id` `{id}` does not answer an open tool call of the preceding assistant message"),
                    )
                    .with_code("tool_call_mismatch"));
                };
                open.remove(k);
                msg.tool_call_id = Some(id);
            }
            _ => {
                if m.tool_calls.is_some_and(|c| !c.is_empty()) {
                    return Err(ApiError::param(
                        p("tool_calls"),
                        "only assistant messages carry `tool_calls`",
                    ));
                }
                if text.is_none() {
                    return Err(ApiError::param(
                        p("content"),
                        format!("a `{role}` message needs `content`"),
                    ));
                }
            }
        }
        msg.name = m.name;
        out.push(msg);
    }
    Ok(out)
}

/// Checks a completion request.
///
/// # Errors
/// Each rule it breaks, with `param` naming the field.
pub fn validate_completion(
    r: CompletionRequest,
    limits: &Limits,
) -> Result<CompletionJob, ApiError> {
    // OpenAI's default for the legacy endpoint.
    let mut gen = common_gen(
        &sampling_of!(r),
        r.n,
        Some(r.max_tokens.unwrap_or(16)),
        "max_tokens",
        r.stop.as_ref(),
        r.stream,
        r.stream_options.as_ref(),
        limits,
    )?;
    gen.logprobs = match r.logprobs {
        None => None,
        Some(k @ 0..=5) => Some(k as usize),
        Some(k) => {
            return Err(ApiError::param(
                "logprobs",
                format!("`logprobs` is {k}; it must be between 0 and 5"),
            ))
        }
    };
    if r.echo == Some(true) {
        return Err(ApiError::param("echo", "`echo` is not supported"));
    }
    if r.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::param("suffix", "`suffix` is not supported"));
    }
    let prompts: Vec<PromptInput> = match r.prompt {
        Prompt::Text(t) => vec![PromptInput::Text(t)],
        Prompt::Texts(v) => v.into_iter().map(PromptInput::Text).collect(),
        Prompt::Tokens(t) => vec![PromptInput::Tokens(t)],
        Prompt::TokenLists(v) => v.into_iter().map(PromptInput::Tokens).collect(),
    };
    if prompts.is_empty() {
        return Err(ApiError::param("prompt", "`prompt` is an empty list"));
    }
    if prompts.len() * gen.n > limits.max_n {
        return Err(ApiError::param(
            "prompt",
            format!(
                "{} prompts × n = {} asks for {} completions; at most {} per request",
                prompts.len(),
                gen.n,
                prompts.len() * gen.n,
                limits.max_n
            ),
        ));
    }
    Ok(CompletionJob {
        model: r.model,
        prompts,
        gen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<ChatJob, ApiError> {
        let r: ChatRequest = parse_json(body.as_bytes())?;
        validate_chat(r, &Limits::default())
    }

    fn err(body: &str) -> ApiError {
        match chat(body) {
            Ok(j) => panic!("accepted: {j:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn minimal_chat_is_accepted_with_openai_defaults() {
        let j = chat(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(j.messages, vec![Message::new("user", "hi")]);
        assert_eq!(j.gen.n, 1);
        assert_eq!(j.gen.temperature, 1.0);
        assert_eq!(j.tool_mode, ToolMode::None);
        assert_eq!(j.format, Format::Text);
    }

    #[test]
    fn malformed_json_and_bad_utf8_are_400() {
        assert_eq!(err("{").code, Some("invalid_json"));
        assert_eq!(err("[1]").code, Some("invalid_json"));
        assert_eq!(err("").code, Some("invalid_json"));
        let e = parse_json::<ChatRequest>(b"{\"model\":\"\xff\"}").unwrap_err();
        assert_eq!(e.code, Some("invalid_utf8"));
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e =
            err(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#);
        assert_eq!(e.param.as_deref(), Some("temperature"), "{e}");
        let e = err(r#"{"model":"m","messages":"hi"}"#);
        assert_eq!(e.param.as_deref(), Some("messages"), "{e}");
        let e = err(r#"{"messages":[]}"#);
        assert!(e.message.contains("model"), "{e}");
    }

    #[test]
    fn empty_messages_and_bad_roles() {
        assert_eq!(
            err(r#"{"model":"m","messages":[]}"#).param.as_deref(),
            Some("messages")
        );
        let e = err(r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn ranges_are_checked() {
        for (field, v) in [
            ("temperature", "3"),
            ("top_p", "0"),
            ("presence_penalty", "-2.5"),
            ("frequency_penalty", "9"),
            ("n", "0"),
            ("n", "1000"),
            ("max_tokens", "0"),
            ("max_tokens", "99999999"),
            ("top_logprobs", "3"),
        ] {
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"{field}":{v}}}"#
            );
            let e = err(&body);
            assert_eq!(e.param.as_deref(), Some(field), "{field}={v}: {e}");
            assert_eq!(e.status.as_u16(), 400);
        }
    }

    #[test]
    fn stop_string_or_list() {
        let j = chat(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END"}"#)
            .unwrap();
        assert_eq!(j.gen.stop, vec!["END"]);
        let e = err(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#,
        );
        assert_eq!(e.param.as_deref(), Some("stop"));
    }

    const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;

    #[test]
    fn tool_round_trip_history_is_converted() {
        let body = format!(
            r#"{{"model":"m",{TOOLS},"messages":[
                {{"role":"user","content":"weather?"}},
                {{"role":"assistant","content":null,"tool_calls":[{{"id":"c1","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}}}}]}},
                {{"role":"tool","tool_call_id":"c1","content":"sunny"}}]}}"#
        );
        let j = chat(&body).unwrap();
        assert_eq!(j.tool_mode, ToolMode::Auto);
        let calls = j.messages[1].tool_calls.as_ref().unwrap();
        assert_eq!(calls[0]["function"]["arguments"]["city"], "Paris");
        assert_eq!(j.messages[2].role, "tool");
    }

    #[test]
    fn mismatched_tool_history_is_400() {
        // A tool result with no call before it.
        let e = err(
            r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"zz","content":"r"}]}"#,
        );
        assert_eq!(e.code, Some("tool_call_mismatch"));
        // A call never answered before the next user turn.
        let e = err(
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"x"}]}"#,
        );
        assert_eq!(e.code, Some("tool_call_mismatch"));
        // Arguments that are not JSON.
        let e = err(
            r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}"#,
        );
        assert!(e.param.unwrap().ends_with("arguments"));
    }

    #[test]
    fn tool_choice_rules() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"x"}]"#;
        let j = chat(&format!(r#"{base},{TOOLS},"tool_choice":"required"}}"#)).unwrap();
        assert_eq!(j.tool_mode, ToolMode::Required);
        let j = chat(&format!(r#"{base},{TOOLS},"tool_choice":{{"type":"function","function":{{"name":"get_weather"}}}}}}"#)).unwrap();
        assert_eq!(j.tool_mode, ToolMode::Named("get_weather".into()));
        let j = chat(&format!(r#"{base},{TOOLS},"tool_choice":"none"}}"#)).unwrap();
        assert_eq!(j.tool_mode, ToolMode::None);
        assert!(j.tools.is_none());
        let e = err(&format!(
            r#"{base},{TOOLS},"tool_choice":{{"type":"function","function":{{"name":"nope"}}}}}}"#
        ));
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        let e = err(&format!(r#"{base},"tool_choice":"required"}}"#));
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn response_formats() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"x"}]"#;
        let j = chat(&format!(
            r#"{base},"response_format":{{"type":"json_object"}}}}"#
        ))
        .unwrap();
        assert_eq!(j.format, Format::JsonObject);
        let j = chat(&format!(r#"{base},"response_format":{{"type":"json_schema","json_schema":{{"name":"x","strict":true,"schema":{{"type":"object"}}}}}}}}"#)).unwrap();
        assert!(matches!(j.format, Format::JsonSchema { strict: true, .. }));
        let e = err(&format!(r#"{base},"response_format":{{"type":"yaml"}}}}"#));
        assert_eq!(e.param.as_deref(), Some("response_format.type"));
    }

    #[test]
    fn content_parts_text_only() {
        let j = chat(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#).unwrap();
        assert_eq!(j.messages[0].content, "ab");
        let e = err(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
        );
        assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
    }

    #[test]
    fn llmos_extension_is_checked() {
        let base = r#"{"model":"m","messages":[{"role":"user","content":"x"}]"#;
        let j = chat(&format!(r#"{base},"llmos":{{"tools":["calculator"]}}}}"#)).unwrap();
        assert_eq!(
            j.agent,
            Some(AgentOpts {
                tools: vec!["calculator".into()],
                max_steps: 8
            })
        );
        let j = chat(&format!(
            r#"{base},{TOOLS},"llmos":{{"tools":["calculator","python"],"max_steps":3}}}}"#
        ))
        .unwrap();
        assert_eq!(j.agent.map(|a| a.max_steps), Some(3));
        assert!(chat(&format!("{base}}}")).unwrap().agent.is_none());
        for (extra, param) in [
            (r#""llmos":{"tools":[]}"#, "llmos.tools"),
            (
                r#""llmos":{"tools":["calculator","calculator"]}"#,
                "llmos.tools[1]",
            ),
            (
                r#""llmos":{"tools":["calculator"],"max_steps":0}"#,
                "llmos.max_steps",
            ),
            (
                r#""llmos":{"tools":["calculator"],"max_steps":99}"#,
                "llmos.max_steps",
            ),
            (
                r#""llmos":{"tools":["calculator"],"max_steps":"many"}"#,
                "llmos.max_steps",
            ),
            (r#""llmos":{"tools":"calculator"}"#, "llmos.tools"),
            (r#""llmos":{"tools":["calculator"]},"n":2"#, "n"),
            (
                r#""llmos":{"tools":["calculator"]},"response_format":{"type":"json_object"}"#,
                "response_format",
            ),
            (
                r#""llmos":{"tools":["calculator"]},"logprobs":true"#,
                "logprobs",
            ),
            (
                r#""llmos":{"tools":["get_weather"]},"tools":[{"type":"function","function":{"name":"get_weather"}}]"#,
                "tools[0].function.name",
            ),
            (
                r#""llmos":{"tools":["calculator"]},"tools":[{"type":"function","function":{"name":"get_weather"}}],"tool_choice":"required""#,
                "tool_choice",
            ),
        ] {
            let e = err(&format!("{base},{extra}}}"));
            assert_eq!(e.param.as_deref(), Some(param), "{extra}: {e}");
            assert_eq!(e.status.as_u16(), 400);
        }
        // A misspelt key is named, not ignored.
        let e = err(&format!(
            r#"{base},"llmos":{{"tools":["calculator"],"max_step":3}}}}"#
        ));
        assert!(e.message.contains("max_step"), "{e}");
    }

    #[test]
    fn completions_prompt_forms() {
        let c = |b: &str| validate_completion(parse_json(b.as_bytes())?, &Limits::default());
        let j = c(r#"{"model":"m","prompt":"hello"}"#).unwrap();
        assert_eq!(j.prompts, vec![PromptInput::Text("hello".into())]);
        assert_eq!(j.gen.max_tokens, Some(16));
        let j = c(r#"{"model":"m","prompt":[1,2,3]}"#).unwrap();
        assert_eq!(j.prompts, vec![PromptInput::Tokens(vec![1, 2, 3])]);
        assert!(c(r#"{"model":"m","prompt":[]}"#).is_err());
        assert!(c(r#"{"model":"m","prompt":{"a":1}}"#).is_err());
        assert_eq!(
            c(r#"{"model":"m","prompt":"x","logprobs":9}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("logprobs")
        );
    }
}
