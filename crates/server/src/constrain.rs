//! Constrained decoding and tool calls, through llmos-grammar (llguidance):
//! `response_format` json_object/json_schema and `tools` become a grammar
//! that masks the logits at every step, and generated text is split into
//! content and OpenAI `tool_calls`.

use crate::api::{ChatJob, Format, ToolMode};
use crate::error::ApiError;
use crate::ModelEntry;
use llmos_engine::batch::TokenConstraint;
use llmos_grammar::{Constraint, ConstraintSpec, GrammarError, ToolChoice, ToolDef};
use serde_json::Value;

/// The tool definitions of a request's `tools` array.
pub fn tool_defs(tools: Option<&Value>) -> Vec<ToolDef> {
    tools
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| ToolDef::from_openai(t).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What the output must be, if anything. Without `tool_grammar` only
/// `response_format` constrains; tool calls are then read from free text.
fn spec(job: &ChatJob, tool_grammar: bool) -> Option<ConstraintSpec> {
    match &job.format {
        Format::JsonObject => return Some(ConstraintSpec::JsonObject),
        Format::JsonSchema { schema, strict } => {
            return Some(ConstraintSpec::JsonSchema {
                schema: schema.clone(),
                strict: *strict,
            })
        }
        Format::Text => {}
    }
    if !tool_grammar {
        return None;
    }
    let choice = match &job.tool_mode {
        ToolMode::None => return None,
        ToolMode::Auto => ToolChoice::Auto,
        ToolMode::Required => ToolChoice::Required,
        ToolMode::Named(n) => ToolChoice::Named(n.clone()),
    };
    Some(ConstraintSpec::ToolCalls {
        tools: tool_defs(job.tools.as_ref()),
        choice,
        parallel: job.parallel_tool_calls,
    })
}

/// A fresh grammar state for one sequence of `job`, or None for free text
/// (also for tools when `tool_grammar` is off: `llmos serve --no-tool-grammar`).
///
/// # Errors
/// A 400 when the schema or tools cannot be compiled.
pub fn for_chat(
    m: &ModelEntry,
    job: &ChatJob,
    tool_grammar: bool,
) -> Result<Option<Box<dyn TokenConstraint>>, ApiError> {
    let Some(spec) = spec(job, tool_grammar) else {
        return Ok(None);
    };
    let param = if job.format == Format::Text {
        "tools"
    } else {
        "response_format"
    };
    let Some(vocab) = &m.grammar else {
        return Err(ApiError::param(
            param,
            format!("constrained decoding is not available for model {}: its vocabulary could not be indexed", m.name),
        ));
    };
    match Constraint::new(vocab, &spec) {
        Ok(c) => Ok(Some(Box::new(c))),
        Err(
            e @ (GrammarError::BadSpec { .. }
            | GrammarError::UnknownTool { .. }
            | GrammarError::NoTools { .. }),
        ) => Err(ApiError::param(param, e.to_string())),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// (content, [(id, name, arguments)]): never fails; text that holds no valid
/// call of a known tool stays content.
pub fn parse_tool_calls(
    text: &str,
    tools: Option<&Value>,
) -> (Option<String>, Vec<(String, String, String)>) {
    let p = llmos_grammar::parse_tool_calls_for(text, &tool_defs(tools));
    let calls = p
        .tool_calls
        .into_iter()
        .map(|c| (c.id, c.name, c.arguments))
        .collect();
    (p.content, calls)
}

/// For templates that ignore `tools` (SmolLM2, Gemma 3): the tools described
/// in the system message, in the format the parser reads.
pub fn tools_prompt(tools: Option<&Value>) -> String {
    llmos_grammar::render_tools_prompt(&tool_defs(tools))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{parse_json, validate_chat, Limits};

    const WEATHER: &str = r#"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]"#;

    fn job(extra: &str) -> ChatJob {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"tools":{WEATHER}{extra}}}"#
        );
        validate_chat(parse_json(body.as_bytes()).unwrap(), &Limits::default()).unwrap()
    }

    #[test]
    fn no_tool_grammar_leaves_tools_unconstrained_in_every_mode() {
        for extra in [
            "",
            r#","tool_choice":"required""#,
            r#","tool_choice":{"type":"function","function":{"name":"get_weather"}}"#,
        ] {
            let j = job(extra);
            assert!(
                matches!(spec(&j, true), Some(ConstraintSpec::ToolCalls { .. })),
                "{extra}"
            );
            assert!(spec(&j, false).is_none(), "{extra}");
        }
        // response_format is still enforced without the tool grammar.
        let j = job(r#","response_format":{"type":"json_object"}"#);
        assert!(matches!(spec(&j, false), Some(ConstraintSpec::JsonObject)));
    }

    #[test]
    fn free_text_calls_parse_and_malformed_ones_stay_content() {
        let j = job("");
        let tools = j.tools.as_ref();
        let (content, calls) = parse_tool_calls(
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>",
            tools,
        );
        assert_eq!(content, None);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].1.as_str(), calls[0].2.as_str()),
            ("get_weather", r#"{"city":"Oslo"}"#)
        );
        // What an unconstrained model writes when it goes wrong: cut off
        // mid-JSON, single quotes, an unknown tool, a second block broken.
        for bad in [
            "<tool_call>\n{\"name\": \"get_weather\", \"argu",
            "<tool_call>\n{'name': 'get_weather', 'arguments': {'city': 'Oslo'}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
            "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"A\"}}</tool_call>\n<tool_call>{\"name\": }</tool_call>",
        ] {
            let (content, calls) = parse_tool_calls(bad, tools);
            assert!(calls.is_empty(), "{bad}");
            assert_eq!(content.as_deref(), Some(bad.trim()), "{bad}");
        }
    }
}
