//! Reading hermes tool calls out of generated text, and describing tools to
//! models whose chat template cannot.

use crate::ToolDef;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// One call, as OpenAI returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// `call_` and 16 hex digits, unique within the process.
    pub id: String,
    pub name: String,
    /// The arguments object as compact JSON text (always parses).
    pub arguments: String,
}

/// A generated message split into text and tool calls.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParsedOutput {
    /// Text outside the tool-call blocks, trimmed; `None` when empty.
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
}

/// Splits model output in the hermes format (Qwen2.5, and any model given
/// [`render_tools_prompt`]) into content and tool calls:
///
/// ```text
/// I'll check.<tool_call>
/// {"name": "get_weather", "arguments": {"city": "Paris"}}
/// </tool_call>
/// ```
///
/// Never fails: if any block is malformed (not JSON, no string `name`,
/// arguments that are not an object, unclosed and not at the end), the
/// whole text is returned as content with no tool calls, so a confused
/// model gives the client text rather than the server a 500. `arguments`
/// given as a JSON string holding an object (some models do that) is
/// accepted; missing arguments become `{}`.
pub fn parse_tool_calls(text: &str) -> ParsedOutput {
    try_parse(text).unwrap_or_else(|| as_text(text))
}

/// As [`parse_tool_calls`], but a call of a function not in `tools` also
/// makes the whole text content.
///
/// Knowing the tools also makes untagged calls recognisable, the two ways
/// Qwen2.5-Coder often answers (the `auto` grammar checks both against the
/// tools' schemas as it would a tagged call; llama.cpp's hermes parser reads
/// both too):
/// * a text that is nothing but `{"name": <a tool>, "arguments": {..}}`
///   objects (one, or several separated by whitespace) is those calls;
/// * a text that starts with such objects in Markdown code blocks
///   (`` ```json `` or `` ``` ``) is those calls, and what follows the last
///   block is content.
pub fn parse_tool_calls_for(text: &str, tools: &[ToolDef]) -> ParsedOutput {
    let known = |c: &ToolCall| tools.iter().any(|t| t.name == c.name);
    if !text.contains(OPEN) {
        if let Some(p) = parse_fenced(text, &known) {
            return p;
        }
    }
    if !text.contains(OPEN) && text.trim_start().starts_with('{') {
        if let Some(calls) = parse_bare(text, &known) {
            return ParsedOutput {
                content: None,
                tool_calls: calls,
            };
        }
    }
    let p = parse_tool_calls(text);
    if p.tool_calls
        .iter()
        .all(|c| tools.iter().any(|t| t.name == c.name))
    {
        p
    } else {
        as_text(text)
    }
}

/// A text that is nothing but call objects of known tools, one or more,
/// separated by whitespace (Qwen2.5-Coder-1.5B writes parallel calls one per
/// line), or None.
fn parse_bare(text: &str, known: &dyn Fn(&ToolCall) -> bool) -> Option<Vec<ToolCall>> {
    let mut calls = Vec::new();
    for v in serde_json::Deserializer::from_str(text.trim()).into_iter::<Value>() {
        calls.push(to_call(v.ok()?).filter(|c| known(c))?);
    }
    (!calls.is_empty()).then_some(calls)
}

/// Leading code blocks that each hold one call of a known tool, or None.
fn parse_fenced(text: &str, known: &dyn Fn(&ToolCall) -> bool) -> Option<ParsedOutput> {
    let mut calls = Vec::new();
    let mut rest = text.trim_start();
    while let Some(body) = rest.strip_prefix("```") {
        let body = body.strip_prefix("json").unwrap_or(body);
        let body = body.strip_prefix('\n')?.trim_start();
        let mut stream = serde_json::Deserializer::from_str(body).into_iter::<Value>();
        let call = to_call(stream.next()?.ok()?).filter(|c| known(c))?;
        calls.push(call);
        rest = body[stream.byte_offset()..]
            .trim_start()
            .strip_prefix("```")?
            .trim_start();
    }
    if calls.is_empty() {
        return None;
    }
    Some(ParsedOutput {
        content: (!rest.is_empty()).then(|| rest.to_string()),
        tool_calls: calls,
    })
}

fn as_text(text: &str) -> ParsedOutput {
    let t = text.trim();
    ParsedOutput {
        content: (!t.is_empty()).then(|| t.to_string()),
        tool_calls: Vec::new(),
    }
}

fn try_parse(text: &str) -> Option<ParsedOutput> {
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        content.push_str(&rest[..at]);
        let body = &rest[at + OPEN.len()..];
        // One JSON value, read with serde so a "</tool_call>" inside a
        // string argument does not end the block.
        let start = body.len() - body.trim_start().len();
        let mut stream = serde_json::Deserializer::from_str(&body[start..]).into_iter::<Value>();
        let value = stream.next()?.ok()?;
        let after = body[start + stream.byte_offset()..].trim_start();
        calls.push(to_call(value)?);
        rest = match after.strip_prefix(CLOSE) {
            Some(r) => r,
            // an unclosed last block (stopped at EOS or max_tokens) is fine
            None if after.trim().is_empty() => "",
            None => return None,
        };
    }
    content.push_str(rest);
    let content = content.trim();
    Some(ParsedOutput {
        content: (!content.is_empty()).then(|| content.to_string()),
        tool_calls: calls,
    })
}

fn to_call(v: Value) -> Option<ToolCall> {
    let Value::Object(mut o) = v else {
        return None;
    };
    let name = o.remove("name")?.as_str()?.to_string();
    if name.is_empty() {
        return None;
    }
    let args = o.remove("arguments").or_else(|| o.remove("parameters"));
    let args = match args {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(&s).ok()?,
        Some(a) => a,
    };
    if !args.is_object() {
        return None;
    }
    Some(ToolCall {
        id: new_call_id(),
        name,
        arguments: serde_json::to_string(&args).ok()?,
    })
}

/// `call_` + 16 hex digits: a process counter mixed with the clock
/// (SplitMix64), so ids differ between calls and between runs.
fn new_call_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    format!("call_{z:016x}")
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`), which is
/// what models trained on `tojson` template output have seen.
struct PySeparators;

impl serde_json::ser::Formatter for PySeparators {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

fn py_json(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PySeparators);
    match serde::Serialize::serialize(v, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => v.to_string(),
    }
}

/// A system-prompt section describing `tools` and the `<tool_call>` format,
/// worded as Qwen2.5's template words it, for models whose chat template
/// ignores `tools` (SmolLM2, Gemma 3). Put it in (or after) the system
/// message; [`parse_tool_calls`] then reads the answer.
pub fn render_tools_prompt(tools: &[ToolDef]) -> String {
    let mut s = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for t in tools {
        let mut f = serde_json::Map::new();
        f.insert("name".into(), Value::String(t.name.clone()));
        if let Some(d) = &t.description {
            f.insert("description".into(), Value::String(d.clone()));
        }
        f.insert("parameters".into(), t.parameters_schema());
        let entry = serde_json::json!({"type": "function", "function": Value::Object(f)});
        s.push('\n');
        s.push_str(&py_json(&entry));
    }
    s.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_call_with_content() {
        let p = parse_tool_calls(
            "Let me look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
        );
        assert_eq!(p.content.as_deref(), Some("Let me look."));
        assert_eq!(p.tool_calls.len(), 1);
        assert_eq!(p.tool_calls[0].name, "f");
        assert_eq!(p.tool_calls[0].arguments, "{\"a\":1}");
    }

    #[test]
    fn close_tag_inside_a_string_argument() {
        let p = parse_tool_calls(
            "<tool_call>{\"name\": \"echo\", \"arguments\": {\"s\": \"</tool_call>\"}}</tool_call>",
        );
        assert_eq!(p.content, None);
        assert_eq!(p.tool_calls[0].arguments, "{\"s\":\"</tool_call>\"}");
    }

    #[test]
    fn malformed_block_is_all_text() {
        let t = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \n</tool_call>";
        let p = parse_tool_calls(t);
        assert!(p.tool_calls.is_empty());
        assert_eq!(p.content.as_deref(), Some(t.trim()));
    }

    #[test]
    fn string_arguments_and_parallel_calls() {
        let p = parse_tool_calls(
            "<tool_call>\n{\"name\": \"a\", \"arguments\": \"{\\\"x\\\": 2}\"}\n</tool_call>\n\
             <tool_call>\n{\"name\": \"b\"}\n</tool_call>",
        );
        assert_eq!(p.tool_calls.len(), 2);
        assert_eq!(p.tool_calls[0].arguments, "{\"x\":2}");
        assert_eq!(p.tool_calls[1].arguments, "{}");
        assert_ne!(p.tool_calls[0].id, p.tool_calls[1].id);
    }

    #[test]
    fn unknown_name_is_text_when_checked() {
        let tools = [ToolDef {
            name: "a".into(),
            description: None,
            parameters: None,
            strict: false,
        }];
        let t = "<tool_call>{\"name\": \"zzz\", \"arguments\": {}}</tool_call>";
        assert!(parse_tool_calls_for(t, &tools).tool_calls.is_empty());
        // bare calls: only of a known tool
        let p = parse_tool_calls_for(" {\"name\": \"a\", \"arguments\": {\"k\": 1}}\n", &tools);
        assert_eq!(p.tool_calls.len(), 1);
        assert_eq!(p.tool_calls[0].arguments, "{\"k\":1}");
        let t = "{\"name\": \"zzz\", \"arguments\": {}}";
        assert_eq!(parse_tool_calls_for(t, &tools).content.as_deref(), Some(t));
        // several bare calls, one per line (Qwen2.5-Coder-1.5B's parallel calls)
        let t = "{\"name\": \"a\", \"arguments\": {\"k\": 1}}\n{\"name\": \"a\", \"arguments\": {\"k\": 2}}";
        let p = parse_tool_calls_for(t, &tools);
        assert_eq!(p.tool_calls.len(), 2);
        assert_eq!(p.tool_calls[1].arguments, "{\"k\":2}");
        // ... all of a known tool, with nothing else after them, or all text
        for t in [
            "{\"name\": \"a\", \"arguments\": {}}\n{\"name\": \"zzz\", \"arguments\": {}}",
            "{\"name\": \"a\", \"arguments\": {}}\nThat fetches it.",
            "{\"name\": \"a\", \"arguments\": {}}\n{\"name\": \"a\", \"argu",
        ] {
            let p = parse_tool_calls_for(t, &tools);
            assert!(p.tool_calls.is_empty(), "{t}");
            assert_eq!(p.content.as_deref(), Some(t));
        }
    }

    #[test]
    fn calls_in_code_blocks() {
        let tools = [ToolDef {
            name: "a".into(),
            description: None,
            parameters: None,
            strict: false,
        }];
        // As Qwen2.5-Coder writes them, two blocks and a remark after.
        let t = "```json\n{\n  \"name\": \"a\",\n  \"arguments\": {\"k\": 1}\n}\n```\n\n```\n{\"name\": \"a\", \"arguments\": {\"k\": 2}}\n```\nDone.";
        let p = parse_tool_calls_for(t, &tools);
        assert_eq!(p.tool_calls.len(), 2);
        assert_eq!(p.tool_calls[1].arguments, "{\"k\":2}");
        assert_eq!(p.content.as_deref(), Some("Done."));
        // Not calls: an unknown tool, an unclosed block, code, text first.
        for t in [
            "```json\n{\"name\": \"zzz\", \"arguments\": {}}\n```",
            "```json\n{\"name\": \"a\", \"arguments\": {}}",
            "```python\nprint(1)\n```",
            "Call:\n```json\n{\"name\": \"a\", \"arguments\": {}}\n```",
        ] {
            let p = parse_tool_calls_for(t, &tools);
            assert!(p.tool_calls.is_empty(), "{t}");
            assert_eq!(p.content.as_deref(), Some(t), "{t}");
        }
    }

    #[test]
    fn prompt_uses_python_separators() {
        let tools = [ToolDef {
            name: "get_weather".into(),
            description: Some("Weather.".into()),
            parameters: Some(
                serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            ),
            strict: false,
        }];
        let p = render_tools_prompt(&tools);
        assert!(p.contains("{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather.\", \"parameters\": {\"type\": \"object\""));
        assert!(p.contains("<tool_call>\n{\"name\": <function-name>"));
    }
}
