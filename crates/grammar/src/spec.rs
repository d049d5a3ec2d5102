//! What a request asks the output to be, and the Lark grammar that says it.

use crate::GrammarError;
use serde::Deserialize;
use serde_json::{json, Value};

/// Whitespace allowed between JSON tokens: one space, or one or two newlines
/// and an indent (as llama.cpp's json-schema-to-grammar). Bounded on purpose:
/// with unbounded whitespace small models can emit newlines until max_tokens
/// and return unparseable JSON.
const JSON_WS: &str = r"(?: |\n{1,2}[ \t]{0,20})";

/// One function the model may call (OpenAI's `tools[i].function`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON schema of the arguments object; absent means any object.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// OpenAI's `strict`: unsupported schema keywords are an error rather
    /// than ignored.
    #[serde(default)]
    pub strict: bool,
}

impl ToolDef {
    /// Reads one entry of OpenAI's `tools` array
    /// (`{"type": "function", "function": {...}}`), or a bare function object.
    ///
    /// # Errors
    /// [`GrammarError::BadSpec`] when the entry is not a function definition.
    pub fn from_openai(v: &Value) -> Result<ToolDef, GrammarError> {
        let f = v.get("function").unwrap_or(v);
        serde_json::from_value(f.clone()).map_err(|e| GrammarError::BadSpec {
            what: "tools".into(),
            message: e.to_string(),
        })
    }

    /// The arguments schema, `{"type": "object"}` when none was given.
    pub fn parameters_schema(&self) -> Value {
        match &self.parameters {
            Some(p) if p.as_object().is_some_and(|o| !o.is_empty()) => p.clone(),
            _ => json!({"type": "object"}),
        }
    }
}

/// OpenAI's `tool_choice`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// No tool calls; tools are not shown to the model.
    None,
    /// Free text, or tool calls once the model starts one.
    #[default]
    Auto,
    /// At least one tool call, nothing else.
    Required,
    /// A call of this function, nothing else.
    Named(String),
}

impl ToolChoice {
    /// Reads `"none" | "auto" | "required" | {"type": "function", "function": {"name": ..}}`.
    ///
    /// # Errors
    /// [`GrammarError::BadSpec`] for anything else.
    pub fn from_openai(v: &Value) -> Result<ToolChoice, GrammarError> {
        let bad = || GrammarError::BadSpec {
            what: "tool_choice".into(),
            message: format!("expected none, auto, required or a function, got {v}"),
        };
        match v {
            Value::String(s) => match s.as_str() {
                "none" => Ok(ToolChoice::None),
                "auto" => Ok(ToolChoice::Auto),
                "required" => Ok(ToolChoice::Required),
                _ => Err(bad()),
            },
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|n| ToolChoice::Named(n.to_string()))
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

/// What the generated text must be.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstraintSpec {
    /// `response_format: {"type": "json_object"}`: any JSON object.
    JsonObject,
    /// `response_format: {"type": "json_schema", ...}`. With `strict`,
    /// schema keywords llguidance cannot enforce are an error (400); without,
    /// they are ignored.
    JsonSchema { schema: Value, strict: bool },
    /// `tools` + `tool_choice` + `parallel_tool_calls`, in the hermes format
    /// (`<tool_call>\n{"name": .., "arguments": ..}\n</tool_call>`).
    ToolCalls {
        tools: Vec<ToolDef>,
        choice: ToolChoice,
        parallel: bool,
    },
    /// A raw llguidance Lark grammar.
    Lark(String),
}

fn json_options(strict: bool) -> Value {
    json!({ "whitespace_pattern": JSON_WS, "lenient": !strict })
}

/// `schema` with llguidance's compile options attached (`x-guidance`).
fn with_options(schema: &Value, strict: bool) -> Result<Value, GrammarError> {
    let mut s = match schema {
        Value::Object(_) => schema.clone(),
        // `true` accepts anything; `false` nothing (llguidance reports it)
        Value::Bool(true) => json!({}),
        _ => {
            return Err(GrammarError::BadSpec {
                what: "json_schema".into(),
                message: format!("a schema must be an object, got {schema}"),
            })
        }
    };
    if let Some(o) = s.as_object_mut() {
        o.insert("x-guidance".into(), json_options(strict));
    }
    Ok(s)
}

/// The JSON one hermes tool call must be: `{"name": <const>, "arguments": <schema>}`.
fn tool_call_schema(t: &ToolDef) -> Result<Value, GrammarError> {
    with_options(
        &json!({
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": t.parameters_schema(),
            },
            "required": ["name", "arguments"],
            "additionalProperties": false,
        }),
        t.strict,
    )
}

impl ConstraintSpec {
    /// The llguidance Lark grammar for this spec. `tags_special` says whether
    /// `<tool_call>` is a special token in the vocabulary (named as a token)
    /// or text (a string literal).
    ///
    /// # Errors
    /// [`GrammarError::UnknownTool`], [`GrammarError::NoTools`], or a schema
    /// that is not an object.
    pub fn to_lark(&self, tags_special: bool) -> Result<String, GrammarError> {
        match self {
            ConstraintSpec::JsonObject => Ok(format!(
                "start: %json {}\n",
                with_options(&json!({"type": "object"}), false)?
            )),
            ConstraintSpec::JsonSchema { schema, strict } => {
                Ok(format!("start: %json {}\n", with_options(schema, *strict)?))
            }
            ConstraintSpec::Lark(g) => Ok(g.clone()),
            ConstraintSpec::ToolCalls {
                tools,
                choice,
                parallel,
            } => tools_lark(tools, choice, *parallel, tags_special),
        }
    }
}

fn tools_lark(
    tools: &[ToolDef],
    choice: &ToolChoice,
    parallel: bool,
    tags_special: bool,
) -> Result<String, GrammarError> {
    let chosen: Vec<&ToolDef> = match choice {
        // Nothing to enforce: free text, as without a constraint.
        ToolChoice::None => return Ok("start: TEXT\nTEXT: /(?s:.*)/\n".into()),
        ToolChoice::Named(n) => {
            let t = tools.iter().find(|t| &t.name == n);
            vec![t.ok_or_else(|| GrammarError::UnknownTool {
                name: n.clone(),
                known: tools
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?]
        }
        ToolChoice::Auto | ToolChoice::Required => tools.iter().collect(),
    };
    if chosen.is_empty() {
        return match choice {
            ToolChoice::Auto => Ok("start: TEXT\nTEXT: /(?s:.*)/\n".into()),
            _ => Err(GrammarError::NoTools { choice: "required" }),
        };
    }
    let (open, close) = if tags_special {
        ("<tool_call>", "</tool_call>")
    } else {
        ("\"<tool_call>\"", "\"</tool_call>\"")
    };
    let more = if parallel { " (\"\\n\" block)*" } else { "" };
    let mut g = String::new();
    if matches!(choice, ToolChoice::Auto) {
        // Free text until the model opens a tool call, then only calls. Text
        // may not start with "{": a bare JSON answer (Qwen2.5-Coder often
        // writes its call without the tags) must be a valid call too.
        g.push_str(&format!(
            "start: TEXT | call | head \"\\n\" call \"\\n\" {close}{more}\n"
        ));
        if tags_special {
            g.push_str(&format!("head: TEXT {open}\n"));
        } else {
            // lazy: the head ends at the first "<tool_call>"
            g.push_str(&format!("head[lazy]: TEXT {open}\n"));
        }
        g.push_str("TEXT: /(?:[^{](?s:.*))?/\n");
    } else {
        g.push_str(&format!("start: block{more}\n"));
    }
    if parallel || !matches!(choice, ToolChoice::Auto) {
        g.push_str(&format!("block: {open} \"\\n\" call \"\\n\" {close}\n"));
    }
    let alts: Vec<String> = (0..chosen.len()).map(|i| format!("tool{i}")).collect();
    g.push_str(&format!("call: {}\n", alts.join(" | ")));
    for (i, t) in chosen.iter().enumerate() {
        g.push_str(&format!("tool{i}: %json {}\n", tool_call_schema(t)?));
    }
    Ok(g)
}
