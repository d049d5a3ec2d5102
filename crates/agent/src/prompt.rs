//! What a model turn of the loop is given: the prompt (the chat template
//! with the tools, or the tools described in the system message for
//! templates that ignore them) and the grammar of the turn. Shared by
//! [`EngineLlm`](crate::EngineLlm) and the server's model on its scheduler
//! (`llmos serve`), so both render and constrain the same way.

use crate::AgentError;
use llmos_grammar::{render_tools_prompt, ConstraintSpec, ToolChoice, ToolDef};
use llmos_text::{ChatTemplate, Message};
use serde_json::Value;

/// The grammar of a turn that must answer in text: no tool-call block, no bare
/// call, no code block first (where small models put a call).
pub const ANSWER_ONLY: &str = r"start: /[^{<`\s][^<]*/";

/// Renders conversations with a fixed set of tools.
#[derive(Clone, Debug)]
pub struct ChatPrompt {
    tools: Vec<ToolDef>,
    tools_json: Value,
    template_takes_tools: bool,
}

impl ChatPrompt {
    /// The prompt for `tools` (OpenAI definitions) under `template`; probes
    /// once whether the template renders `tools` itself.
    pub fn new(template: &ChatTemplate, tools_json: Value) -> ChatPrompt {
        let probe = serde_json::json!([{"type": "function", "function": {"name": "llmos_probe_tool_zq", "parameters": {}}}]);
        let msgs = [Message::new("system", "s"), Message::new("user", "u")];
        let template_takes_tools = template
            .render(&msgs, true, Some(&probe))
            .map(|s| s.contains("llmos_probe_tool_zq"))
            .unwrap_or(false);
        let tools = tools_json
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| ToolDef::from_openai(t).ok())
                    .collect()
            })
            .unwrap_or_default();
        ChatPrompt {
            tools,
            tools_json,
            template_takes_tools,
        }
    }

    /// The tools as grammar definitions.
    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// The prompt text for `messages`, ending with the assistant's turn.
    ///
    /// # Errors
    /// The template rejects the conversation.
    pub fn render(
        &self,
        template: &ChatTemplate,
        messages: &[Message],
    ) -> Result<String, AgentError> {
        let r = if self.template_takes_tools {
            template.render(messages, true, Some(&self.tools_json))
        } else {
            let mut m = messages.to_vec();
            let tools = render_tools_prompt(&self.tools);
            match m.first_mut() {
                Some(s) if s.role == "system" => s.content = format!("{}\n\n{tools}", s.content),
                _ => m.insert(0, Message::new("system", tools)),
            }
            // Templates without tools support may not know the `tool` role.
            for x in &mut m {
                if x.role == "tool" {
                    x.role = "user".into();
                    x.content = format!("<tool_response>\n{}\n</tool_response>", x.content);
                }
            }
            template.render(&m, true, None)
        };
        r.map_err(|e| AgentError::Template(e.to_string()))
    }

    /// The grammar of the turn after `messages`: the `auto` tool-call
    /// grammar, or a call of `first_call` (the one tool the turn must call),
    /// or [`ANSWER_ONLY`] when the loop asks for a text answer (`tools`
    /// false). Right after a call of a tool that does not exist (its error
    /// result is the last message) the turn must call one that does:
    /// qwen2.5-coder-0.5b otherwise called the made-up tool again until the
    /// step limit.
    pub fn turn_spec(
        &self,
        tools: bool,
        first_call: Option<&str>,
        messages: &[Message],
    ) -> ConstraintSpec {
        if !tools {
            // Text only: no `<` (so no `<tool_call>`), and no `{` first (no bare call).
            return ConstraintSpec::Lark(ANSWER_ONLY.into());
        }
        let after_unknown = messages.last().is_some_and(|m| {
            m.role == "tool"
                && m.name
                    .as_deref()
                    .is_some_and(|n| !self.tools.iter().any(|t| t.name == n))
        });
        ConstraintSpec::ToolCalls {
            tools: self.tools.clone(),
            choice: match first_call {
                Some(name) => ToolChoice::Named(name.to_string()),
                None if after_unknown => ToolChoice::Required,
                None => ToolChoice::Auto,
            },
            // One forced call, not a run of them.
            parallel: first_call.is_none() && !after_unknown,
        }
    }
}
