//! llmos-mcp: the Model Context Protocol, both directions, on `rmcp` (the
//! official Rust SDK).
//!
//! - [`server`]: llmos's built-in tools ([`llmos_tools::Tool`]) as an MCP
//!   server (`llmos mcp`), over stdio or streamable HTTP. A [`ToolOutput`]
//!   becomes a `CallToolResult` with one text block and `isError`.
//! - [`client`]: each tool of a foreign MCP server (a child process over
//!   stdio, or a streamable-HTTP URL) as one [`llmos_tools::Tool`], so the
//!   agent loop calls it like a built-in (`llmos agent --mcp CMD`). What a
//!   foreign server returns is always `untrusted`: the agent spotlights it
//!   and the guard treats it as outside data.
//!
//! The design decision: the seam is the `Tool` trait, not MCP. Built-ins do
//! not know about MCP, and the agent does not know a tool is remote; this
//! crate adapts one to the other in both directions. Tools are blocking
//! (`Tool::call` may run a sandboxed Python cell for seconds), so the server
//! runs them on tokio's blocking pool, and the client owns a small runtime
//! per connection and blocks on it from the agent's thread.
//!
//! ```no_run
//! use llmos_mcp::client::{connect, Options, ServerSpec};
//! use llmos_tools::Tool;
//! let spec = ServerSpec::command_line("python3 tests/mcp/order_server.py")?;
//! let tools = connect(&spec, &Options::default())?;
//! let out = tools[0].call(serde_json::json!({"order_id": "12345"}));
//! assert!(out.untrusted);
//! # Ok::<(), llmos_mcp::Error>(())
//! ```

pub mod client;
pub mod server;

pub use llmos_tools::ToolOutput;

/// Errors of starting, connecting to and serving MCP.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // -- client: naming the server
    #[error("mcp server `{0}`: empty command (give a program and its arguments)")]
    EmptyCommand(String),
    #[error("mcp server `{command}`: cannot split the command line: {message}")]
    BadCommandLine { command: String, message: String },
    #[error("mcp server `{command}`: cannot start it: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("mcp server `{server}`: {op} failed: {message}")]
    Protocol {
        server: String,
        op: &'static str,
        message: String,
    },
    #[error("mcp server `{server}`: {op} timed out after {secs} s")]
    Timeout {
        server: String,
        op: &'static str,
        secs: u64,
    },

    // -- server
    #[error("mcp: --http {addr}: {message}")]
    BadAddress { addr: String, message: String },
    #[error("mcp: {op}: {source}")]
    Io { op: String, source: std::io::Error },
    #[error("mcp: serving over {transport}: {message}")]
    Serve {
        transport: &'static str,
        message: String,
    },
}

/// A tokio runtime for MCP I/O (two workers: the session loop and the transport).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("llmos-mcp")
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            op: "start the async runtime".into(),
            source,
        })
}
