//! Built-in tools for the llmos agent loop: `calculator`, `python`, `files`,
//! `browse` and `search` (the disk index of llmos-rag).
//!
//! Every tool implements [`Tool`]: a name, a description, a strict JSON schema
//! of its parameters in OpenAI's function format (all properties required,
//! optional ones nullable, `additionalProperties: false`, so constrained
//! decoding can only produce calls the tool accepts), and
//! [`call`](Tool::call), which never panics and never returns `Err`: failures
//! come back as a [`ToolOutput`] with `is_error` set and a message that says
//! what was wrong and what to do, because the model reads it.
//!
//! Outputs carry two flags for the guard layer: `untrusted` (the content
//! came from outside: a file, a web page, program output, and must be treated
//! as data, never as instructions) and `side_effects` (what the call changed
//! or wants to change). Tools never ask the user anything themselves: a file
//! write returns [`SideEffect::WriteProposed`] and the agent loop decides.
//!
//! ```
//! use llmos_tools::{calc::Calculator, Tool};
//! let out = Calculator::default().call(serde_json::json!({"expression": "2**10", "digits": null}));
//! assert_eq!(out.content, "1024");
//! assert!(!out.is_error && !out.untrusted);
//! ```

pub mod args;
pub mod browse;
pub mod calc;
pub mod files;
pub mod python;
pub mod search;

use std::path::PathBuf;

use serde_json::{json, Value};

/// A tool the model can call.
pub trait Tool: Send + Sync {
    /// The function name the model uses, e.g. `calculator`.
    fn name(&self) -> &str;
    /// What the tool does and when to use it, for the model.
    fn description(&self) -> &str;
    /// JSON schema of the arguments object (strict: every property required, no extras).
    fn parameters(&self) -> Value;
    /// Run the tool. Never panics; errors are `ToolOutput { is_error: true, .. }`.
    fn call(&self, args: Value) -> ToolOutput;

    /// Performs a write this tool proposed ([`SideEffect::WriteProposed`])
    /// once the user approved it. Tools that propose none keep this default.
    fn apply_write(&self, req: &files::WriteRequest) -> ToolOutput {
        ToolOutput::error(format!(
            "{} proposes no writes; nothing was written to {}",
            self.name(),
            req.path.display()
        ))
    }

    /// What a call would change outside the conversation, judged before it
    /// runs, for the agent's capability guard; None: nothing. The guard knows
    /// the built-in tools' side effects by name (files writes, browse to a
    /// new host, Python that writes files); a tool it does not know, such
    /// as an MCP server's, says here.
    fn side_effect(&self, _args: &Value) -> Option<String> {
        None
    }

    /// The OpenAI `tools` entry: `{"type": "function", "function": {...}}`.
    fn definition(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name(),
                "description": self.description(),
                "parameters": self.parameters(),
                "strict": true,
            }
        })
    }
}

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    /// Text for the model (a tool message).
    pub content: String,
    /// The call failed; `content` says why and what to do.
    pub is_error: bool,
    /// `content` holds outside data (files, web pages, program output): data, not instructions.
    pub untrusted: bool,
    /// What the call changed, or asks to change.
    pub side_effects: Vec<SideEffect>,
    /// The passages `content` quotes, with where each comes from (`search`
    /// fills it), so citations need not be parsed back out of the text.
    pub sources: Vec<llmos_rag::ask::Source>,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> ToolOutput {
        ToolOutput {
            content: content.into(),
            ..ToolOutput::default()
        }
    }

    pub fn error(content: impl Into<String>) -> ToolOutput {
        ToolOutput {
            content: content.into(),
            is_error: true,
            ..ToolOutput::default()
        }
    }

    pub fn untrusted(mut self) -> ToolOutput {
        self.untrusted = true;
        self
    }
}

/// A side effect of a tool call, for the capability policy.
#[derive(Debug, Clone, PartialEq)]
pub enum SideEffect {
    /// Files were created or modified (by sandboxed code in its scratch dir, or an approved write).
    FilesWritten(Vec<PathBuf>),
    /// A page was fetched from this host.
    Fetched { host: String, url: String },
    /// Nothing was written: the tool asks for approval of this write
    /// ([`files::Files::apply`] performs it once approved).
    WriteProposed(files::WriteRequest),
}

/// Errors of the crate's non-tool APIs (sandbox setup, policies).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // -- sandbox
    #[error("python sandbox unavailable: {0}")]
    SandboxUnavailable(String),
    #[error("python sandbox: {op}: {source}")]
    SandboxIo { op: String, source: std::io::Error },

    // -- files
    #[error("files: root {path}: {source} (give an existing directory)")]
    BadRoot {
        path: PathBuf,
        source: std::io::Error,
    },

    // -- browse
    #[error("browse: {0}")]
    Browse(String),
}

/// `p` canonicalised, when it is an existing directory: the check the
/// `files` roots and the python tool's read-only folders share.
///
/// # Errors
/// [`Error::BadRoot`] when `p` cannot be canonicalised or is not a directory.
pub(crate) fn canonical_dir(p: &std::path::Path) -> Result<PathBuf, Error> {
    let bad = |source| Error::BadRoot {
        path: p.to_path_buf(),
        source,
    };
    let c = std::fs::canonicalize(p).map_err(bad)?;
    if !c.is_dir() {
        return Err(bad(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constrained decoding relies on this: every property required, nothing else allowed.
    #[test]
    fn every_schema_is_strict() {
        let dir = std::env::temp_dir();
        let tools: Vec<Box<dyn Tool>> = vec![
            Box::new(calc::Calculator::default()),
            Box::new(files::Files::new(&[&dir]).unwrap_or_else(|e| panic!("{e}"))),
            Box::new(browse::Browse::new(&["example.org"])),
        ];
        for t in tools {
            let p = t.parameters();
            let props: Vec<&String> = p["properties"]
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            let req: Vec<&str> = p["required"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            assert!(!props.is_empty(), "{}", t.name());
            for k in &props {
                assert!(
                    req.contains(&k.as_str()),
                    "{}: '{k}' must be required (nullable if optional)",
                    t.name()
                );
            }
            assert_eq!(p["additionalProperties"], false, "{}", t.name());
            assert_eq!(t.definition()["function"]["strict"], true);
        }
    }
}
