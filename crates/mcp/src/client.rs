//! Foreign MCP tools as llmos [`Tool`]s (`llmos agent --mcp CMD`, `--mcp-url URL`).
//!
//! [`connect`] starts (or reaches) one server, lists its tools and returns
//! one [`McpTool`] per tool, all sharing the connection, which closes (the
//! child is asked to exit, then killed) when the last of them is dropped.
//! Every result is `untrusted`: a foreign server's text is outside data.
//! The schema a foreign server gives is not strict in OpenAI's sense, so its
//! definition goes to the model with `strict: false` (lenient constraints).
//!
//! Names: a tool is offered under its own name, made a valid function name
//! (`[A-Za-z0-9_-]`, at most 64 bytes); when that is already taken (a
//! built-in, or another server's tool) it gets the server's name as a
//! prefix (`orders_calculator`), and a number if that is taken too.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llmos_tools::{Tool, ToolOutput};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{Peer, ServiceExt};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Error;

/// Where a server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerSpec {
    /// A program speaking MCP on its stdin/stdout; `line` is how the user wrote it.
    Command { line: String, argv: Vec<String> },
    /// A streamable-HTTP endpoint.
    Url(String),
}

impl ServerSpec {
    /// A command line, split with POSIX shell rules (quotes, backslashes; no expansion).
    ///
    /// # Errors
    /// Unbalanced quotes, or nothing to run.
    pub fn command_line(line: &str) -> Result<ServerSpec, Error> {
        let argv = shell_words::split(line).map_err(|e| Error::BadCommandLine {
            command: line.to_string(),
            message: e.to_string(),
        })?;
        if argv.is_empty() {
            return Err(Error::EmptyCommand(line.to_string()));
        }
        Ok(ServerSpec::Command {
            line: line.to_string(),
            argv,
        })
    }

    pub fn url(url: &str) -> ServerSpec {
        ServerSpec::Url(url.to_string())
    }

    /// How errors name the server: its command line or URL.
    pub fn label(&self) -> &str {
        match self {
            ServerSpec::Command { line, .. } => line,
            ServerSpec::Url(u) => u,
        }
    }
}

/// Time limits.
#[derive(Clone, Debug)]
pub struct Options {
    /// Start, `initialize` and `tools/list` together.
    pub connect_timeout: Duration,
    /// One `tools/call`.
    pub call_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(120),
        }
    }
}

/// The last lines a child wrote to stderr, for error messages.
type Tail = Arc<Mutex<VecDeque<String>>>;
const TAIL_LINES: usize = 12;

/// One live session with a server, shared by its tools.
struct Connection {
    label: String,
    call_timeout: Duration,
    peer: Peer<RoleClient>,
    service: Mutex<Option<RunningService<RoleClient, ClientConfig>>>,
    tail: Option<Tail>,
    rt: tokio::runtime::Runtime,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let service = self.service.lock().ok().and_then(|mut s| s.take());
        if let Some(mut s) = service {
            // Closes the child's stdin, waits, then SIGTERM, then kill.
            let _ = self
                .rt
                .block_on(s.close_with_timeout(Duration::from_secs(5)));
        }
    }
}

fn tail_text(tail: Option<&Tail>) -> String {
    let lines: Vec<String> = tail
        .and_then(|t| t.lock().ok().map(|t| t.iter().cloned().collect()))
        .unwrap_or_default();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its stderr ended with:\n{}", lines.join("\n"))
    }
}

impl Connection {
    fn call(&self, tool: &str, args: Map<String, Value>) -> ToolOutput {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        let r = self.rt.block_on(async {
            tokio::time::timeout(self.call_timeout, self.peer.call_tool(params)).await
        });
        match r {
            Ok(Ok(result)) => from_call_result(result),
            Ok(Err(e)) => ToolOutput::error(format!(
                "mcp server `{}`: calling `{tool}` failed: {e}{}",
                self.label,
                tail_text(self.tail.as_ref())
            ))
            .untrusted(),
            Err(_) => ToolOutput::error(format!(
                "mcp server `{}`: `{tool}` gave no result within {} s (the call was abandoned)",
                self.label,
                self.call_timeout.as_secs()
            )),
        }
    }
}

/// A foreign result as a tool output: its text blocks joined, other blocks
/// named, structured content as JSON when there is no text. Always untrusted.
pub fn from_call_result(r: CallToolResult) -> ToolOutput {
    let mut parts = Vec::new();
    for block in &r.content {
        match block.as_text() {
            Some(t) => parts.push(t.text.clone()),
            None => {
                let kind = serde_json::to_value(block)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| "non-text".into());
                parts.push(format!("[{kind} content not shown]"));
            }
        }
    }
    if parts.is_empty() {
        if let Some(s) = &r.structured_content {
            parts.push(s.to_string());
        }
    }
    ToolOutput {
        content: parts.join("\n"),
        is_error: r.is_error.unwrap_or(false),
        untrusted: true,
        ..ToolOutput::default()
    }
}

/// One tool of a foreign MCP server.
pub struct McpTool {
    /// The name the model sees (unique among the agent's tools).
    name: String,
    /// The name the server knows.
    remote_name: String,
    description: String,
    schema: Value,
    /// The server declared the tool read-only (`readOnlyHint`).
    read_only: bool,
    conn: Arc<Connection>,
}

impl McpTool {
    /// The tool's name on its server.
    pub fn remote_name(&self) -> &str {
        &self.remote_name
    }

    /// The server, as the user gave it (command line or URL).
    pub fn server(&self) -> &str {
        &self.conn.label
    }
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.schema.clone()
    }

    /// Unless the server declares the tool read-only (`readOnlyHint`),
    /// a call may change anything: after untrusted data, the guard asks.
    fn side_effect(&self, _args: &Value) -> Option<String> {
        (!self.read_only).then(|| {
            format!(
                "call `{}` of the MCP server `{}` (not declared read-only)",
                self.remote_name, self.conn.label
            )
        })
    }

    fn call(&self, args: Value) -> ToolOutput {
        let args = match args {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                return ToolOutput::error(format!(
                    "{}: arguments must be a JSON object, got {other}",
                    self.name
                ))
            }
        };
        self.conn.call(&self.remote_name, args)
    }

    /// Not strict: a foreign schema may use keywords the grammar cannot
    /// enforce, and leaves optional properties out of `required`.
    fn definition(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.schema,
                "strict": false,
            }
        })
    }
}

/// A valid function name: `[A-Za-z0-9_-]`, at most 64 bytes, not empty.
fn function_name(s: &str) -> String {
    let mut n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if n.is_empty() {
        n.push_str("tool");
    }
    n
}

/// `name`, or with `prefix_` (then `prefixN_`) when `taken` has it; adds the result to `taken`.
fn unique_name(name: &str, prefix: &str, taken: &mut Vec<String>) -> String {
    let base = function_name(name);
    let mut n = base.clone();
    let mut i = 1;
    while taken.contains(&n) {
        let p = if i == 1 {
            prefix.to_string()
        } else {
            format!("{prefix}{i}")
        };
        n = function_name(&format!("{p}_{base}"));
        i += 1;
    }
    taken.push(n.clone());
    n
}

async fn start(
    spec: &ServerSpec,
) -> Result<(RunningService<RoleClient, ClientConfig>, Option<Tail>), Error> {
    let client = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("llmos", env!("CARGO_PKG_VERSION")),
    );
    let label = spec.label().to_string();
    let init_failed = |message: String| Error::Protocol {
        server: label.clone(),
        op: "initialize",
        message,
    };
    match spec {
        ServerSpec::Command { argv, .. } => {
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|source| Error::Spawn {
                    command: label.clone(),
                    source,
                })?;
            let tail: Tail = Arc::default();
            if let Some(stderr) = stderr {
                let t = Arc::clone(&tail);
                tokio::spawn(async move {
                    let mut lines = BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Ok(mut t) = t.lock() {
                            if t.len() == TAIL_LINES {
                                t.pop_front();
                            }
                            t.push_back(line);
                        }
                    }
                });
            }
            match client.serve(transport).await {
                Ok(s) => Ok((s, Some(tail))),
                Err(e) => {
                    // Let the reader catch the child's last words.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err(init_failed(format!("{e}{}", tail_text(Some(&tail)))))
                }
            }
        }
        ServerSpec::Url(url) => {
            // reqwest runs on rustls without a built-in provider: use ring
            // (already installed by someone else is fine too).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let transport = StreamableHttpClientTransport::from_uri(url.as_str());
            let s = client
                .serve(transport)
                .await
                .map_err(|e| init_failed(e.to_string()))?;
            Ok((s, None))
        }
    }
}

/// Connects to one server and returns its tools, named uniquely against
/// `taken` (the names already in use, which this extends).
///
/// # Errors
/// The command cannot start, the handshake or `tools/list` fails, or they
/// take longer than `opts.connect_timeout`; every error names the server.
pub fn connect_named(
    spec: &ServerSpec,
    opts: &Options,
    taken: &mut Vec<String>,
) -> Result<Vec<Box<dyn Tool>>, Error> {
    let label = spec.label().to_string();
    let rt = crate::runtime()?;
    let timeout = |op: &'static str| Error::Timeout {
        server: label.clone(),
        op,
        secs: opts.connect_timeout.as_secs(),
    };
    // (A tokio timer needs the runtime: built inside `block_on`.)
    let deadline = tokio::time::Instant::now() + opts.connect_timeout;
    let (service, tail) = rt
        .block_on(async { tokio::time::timeout_at(deadline, start(spec)).await })
        .map_err(|_| timeout("starting and initialize"))??;
    // From here on, dropping `conn` closes the session (on an error too).
    let conn = Arc::new(Connection {
        label: label.clone(),
        call_timeout: opts.call_timeout,
        peer: service.peer().clone(),
        service: Mutex::new(Some(service)),
        tail,
        rt,
    });
    let listed = conn
        .rt
        .block_on(async { tokio::time::timeout_at(deadline, conn.peer.list_all_tools()).await })
        .map_err(|_| timeout("tools/list"))?
        .map_err(|e| Error::Protocol {
            server: label.clone(),
            op: "tools/list",
            message: format!("{e}{}", tail_text(conn.tail.as_ref())),
        })?;
    let server_name = conn
        .peer
        .peer_info()
        .and_then(|i| i.server_info.as_ref().map(|s| s.name.clone()))
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "mcp".into());
    let prefix = function_name(&server_name);
    let tools = listed
        .into_iter()
        .map(|t| {
            let remote_name = t.name.to_string();
            let description = t
                .description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .map_or_else(
                    || format!("Tool `{remote_name}` of the MCP server `{}`.", conn.label),
                    str::to_string,
                );
            Box::new(McpTool {
                name: unique_name(&remote_name, &prefix, taken),
                remote_name,
                description,
                schema: Value::Object((*t.input_schema).clone()),
                read_only: t
                    .annotations
                    .as_ref()
                    .and_then(|a| a.read_only_hint)
                    .unwrap_or(false),
                conn: Arc::clone(&conn),
            }) as Box<dyn Tool>
        })
        .collect();
    Ok(tools)
}

/// [`connect_named`] with no names taken.
///
/// # Errors
/// As [`connect_named`].
pub fn connect(spec: &ServerSpec, opts: &Options) -> Result<Vec<Box<dyn Tool>>, Error> {
    connect_named(spec, opts, &mut Vec::new())
}

/// Connects to every server in order; names are unique across all of them
/// and `builtin` (the names of the tools already there).
///
/// # Errors
/// The first server that fails (the error names it).
pub fn connect_all(
    specs: &[ServerSpec],
    builtin: &[&str],
    opts: &Options,
) -> Result<Vec<Box<dyn Tool>>, Error> {
    let mut taken: Vec<String> = builtin.iter().map(|s| s.to_string()).collect();
    let mut tools = Vec::new();
    for s in specs {
        tools.extend(connect_named(s, opts, &mut taken)?);
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell() {
        let s = ServerSpec::command_line(r#"python3 "my server.py" --name 'a b' x\ y"#)
            .expect("valid line");
        let ServerSpec::Command { argv, .. } = s else {
            panic!("not a command")
        };
        assert_eq!(argv, ["python3", "my server.py", "--name", "a b", "x y"]);
        assert!(matches!(
            ServerSpec::command_line("   "),
            Err(Error::EmptyCommand(_))
        ));
        assert!(matches!(
            ServerSpec::command_line("python3 'unclosed"),
            Err(Error::BadCommandLine { .. })
        ));
    }

    #[test]
    fn colliding_names_get_the_server_prefix() {
        let mut taken = vec!["calculator".to_string(), "files".to_string()];
        assert_eq!(
            unique_name("calculator", "orders", &mut taken),
            "orders_calculator"
        );
        assert_eq!(
            unique_name("calculator", "orders", &mut taken),
            "orders2_calculator"
        );
        assert_eq!(
            unique_name("order_status", "orders", &mut taken),
            "order_status"
        );
        assert_eq!(unique_name("a.b/c", "x", &mut taken), "a_b_c");
        assert_eq!(function_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn a_server_that_cannot_start_is_an_error_naming_it() {
        let spec = ServerSpec::command_line("/nonexistent/llmos-mcp-server --flag").expect("line");
        let e = connect(&spec, &Options::default())
            .err()
            .expect("no such program")
            .to_string();
        assert!(e.contains("/nonexistent/llmos-mcp-server --flag"), "{e}");
        assert!(e.contains("cannot start"), "{e}");
    }

    #[test]
    fn a_server_that_exits_at_once_is_an_error_with_its_stderr() {
        let spec =
            ServerSpec::command_line("sh -c 'echo boom-from-server >&2; exit 3'").expect("line");
        let e = connect(&spec, &Options::default())
            .err()
            .expect("server exits")
            .to_string();
        assert!(e.contains("initialize failed"), "{e}");
        assert!(e.contains("boom-from-server"), "{e}");
    }

    #[test]
    fn results_are_untrusted_text() {
        let r = CallToolResult::success(vec![
            rmcp::model::ContentBlock::text("a"),
            rmcp::model::ContentBlock::text("b"),
        ]);
        let out = from_call_result(r);
        assert_eq!(out.content, "a\nb");
        assert!(out.untrusted && !out.is_error);
    }
}
