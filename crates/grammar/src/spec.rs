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

/// `schema` with every object that lists `properties` but says nothing of
/// `additionalProperties` closed (`additionalProperties: false`), as
/// llama.cpp's json-schema-to-grammar reads such objects. JSON Schema would
/// allow any extra key, and small models use that freedom to invent
/// arguments (`"days": 1` for a function that takes only `city`), which a
/// real function rejects. Objects with `patternProperties` or a composition
/// keyword stay open, and `allOf` branches are left alone: closing one branch
/// would reject the properties another branch adds.
pub(crate) fn close_objects(schema: &Value) -> Value {
    let Value::Object(o) = schema else {
        return schema.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in o {
        let v = match (k.as_str(), v) {
            ("properties" | "$defs" | "definitions", Value::Object(m)) => Value::Object(
                m.iter()
                    .map(|(n, s)| (n.clone(), close_objects(s)))
                    .collect(),
            ),
            ("items" | "additionalProperties" | "not", _) => close_objects(v),
            ("prefixItems" | "anyOf" | "oneOf", Value::Array(a)) => {
                Value::Array(a.iter().map(close_objects).collect())
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let open = [
        "additionalProperties",
        "patternProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "$ref",
    ]
    .iter()
    .any(|k| o.contains_key(*k));
    if o.contains_key("properties") && !open {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// `s` as a regex that matches it literally (also inside a Lark `/../`).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The JSON one hermes tool call must be: `{"name": <const>, "arguments": <schema>}`.
fn tool_call_schema(t: &ToolDef) -> Result<Value, GrammarError> {
    with_options(
        &json!({
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": close_objects(&t.parameters_schema()),
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
        // Free text until the model opens a tool call, then only calls.
        // Qwen2.5-Coder also writes calls without the tags, as a bare JSON
        // object or one in a ```json code block (llama.cpp's hermes grammar
        // accepts both). As in llama.cpp, such an answer becomes a call only
        // once it reads `{"name": "<a tool>"`: from there a lazy trigger
        // lexeme ends and the arguments follow the tool's schema. Text may
        // not start with that opening (so the trigger is the only way on),
        // but any other JSON stays text: a JSON answer, or a call of a
        // function that does not exist, is not forced into a call of one
        // that does (it reaches the client as text).
        let names = chosen
            .iter()
            .map(|t| regex_escape(&t.name))
            .collect::<Vec<_>>()
            .join("|");
        g.push_str(&format!(
            "start: TEXT | bare | fenced | head \"\\n\" call \"\\n\" {close}{more}\n"
        ));
        if tags_special {
            g.push_str(&format!("head: TEXT {open}\n"));
        } else {
            // lazy: the head ends at the first "<tool_call>"
            g.push_str(&format!("head[lazy]: TEXT {open}\n"));
        }
        let fences = if parallel {
            " (\"\\n\" \"\\n\"? FENCE call \"\\n```\")*"
        } else {
            ""
        };
        let (mut bare, mut fenced) = (Vec::new(), Vec::new());
        for (i, t) in chosen.iter().enumerate() {
            let name = regex_escape(&t.name);
            let args = with_options(&close_objects(&t.parameters_schema()), t.strict)?;
            g.push_str(&format!(
                "btrig{i}[lazy]: /\\{{\\s*\"name\"\\s*:\\s*\"{name}\"/\n\
                 ftrig{i}[lazy]: /```(?:json)?\\n\\{{\\s*\"name\"\\s*:\\s*\"{name}\"/\n\
                 args{i}: %json {args}\n"
            ));
            bare.push(format!("btrig{i} ARGS args{i} END"));
            fenced.push(format!("ftrig{i} ARGS args{i} END"));
        }
        // One bare call, then the end. Several, one per line, is how
        // Qwen2.5-Coder-1.5B writes parallel calls without tags (the parser
        // reads them), but allowing a newline after a bare call let
        // qwen2.5-coder-0.5b write the same call again and again until
        // max_tokens: once the newline is out, only another call may follow.
        g.push_str(&format!("bare: {}\n", bare.join(" | ")));
        g.push_str(&format!(
            "fenced: ({}) \"\\n```\"{fences}\n",
            fenced.join(" | ")
        ));
        g.push_str(&format!(
            "ARGS: /{JSON_WS}?,{JSON_WS}?\"arguments\"{JSON_WS}?:{JSON_WS}?/\n\
             END: /{JSON_WS}?\\}}/\n\
             FENCE: \"```json\\n\" | \"```\\n\"\n\
             TEXT: /(?s:.*)/ & ~/(?:```(?:json)?\\n)?\\{{\\s*\"name\"\\s*:\\s*\"(?:{names})\"(?s:.*)/\n"
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_with_properties_are_closed_unless_they_say_otherwise() {
        let s = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "stops": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                "meta": {"type": "object", "additionalProperties": true, "properties": {"k": {}}},
                "tags": {"type": "object", "patternProperties": {"^t": {}}, "properties": {"k": {}}},
                "either": {"anyOf": [{"type": "object", "properties": {"a": {}}}, {"type": "null"}]},
                "both": {"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}
            }
        });
        let c = close_objects(&s);
        assert_eq!(c["additionalProperties"], false);
        let p = &c["properties"];
        assert_eq!(p["stops"]["items"]["additionalProperties"], false);
        assert_eq!(p["meta"]["additionalProperties"], true);
        assert!(p["tags"].get("additionalProperties").is_none());
        assert_eq!(p["either"]["anyOf"][0]["additionalProperties"], false);
        assert!(p["both"]["allOf"][0].get("additionalProperties").is_none());
        assert!(p["city"].get("additionalProperties").is_none());
        // no properties listed: any object, as before
        assert_eq!(
            close_objects(&json!({"type": "object"})),
            json!({"type": "object"})
        );
    }
}
