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

/// What the output must be, if anything.
fn spec(job: &ChatJob) -> Option<ConstraintSpec> {
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

/// A fresh grammar state for one sequence of `job`, or None for free text.
///
/// # Errors
/// A 400 when the schema or tools cannot be compiled.
pub fn for_chat(
    m: &ModelEntry,
    job: &ChatJob,
) -> Result<Option<Box<dyn TokenConstraint>>, ApiError> {
    let Some(spec) = spec(job) else {
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
