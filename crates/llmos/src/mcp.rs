//! `llmos mcp`: llmos's built-in tools as an MCP server, over stdio (the
//! default: stdout carries only protocol messages, notes go to stderr) or
//! streamable HTTP (`--http 127.0.0.1:PORT`, served at `/mcp`).

use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct McpArgs {
    #[command(flatten)]
    pub tools: crate::cli::ToolArgs,
    /// Serve streamable HTTP on ADDR (HOST:PORT, e.g. 127.0.0.1:8765; port 0
    /// picks a free one) at /mcp instead of stdio. The URL goes to stderr.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Allow --http on an address other than loopback. There is no
    /// authentication: anyone who reaches it can use the tools.
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
}

fn tools(a: &McpArgs, note: &mut dyn FnMut(&str)) -> Result<Vec<Box<dyn llmos_tools::Tool>>> {
    crate::agent::builtin_tools(&a.tools, note)
}

pub fn run(a: &McpArgs) -> Result<ExitCode> {
    // Built once up front so a bad --files root fails now, not per session.
    let first = tools(a, &mut |n| eprintln!("note: {n}"))?;
    let names: Vec<String> = first.iter().map(|t| t.name().to_string()).collect();
    match &a.http {
        None => {
            eprintln!("llmos mcp: serving {} over stdio", names.join(", "));
            llmos_mcp::server::serve_stdio(first)?;
        }
        Some(addr) => {
            let sock = llmos_mcp::server::http_addr(addr, a.allow_remote)?;
            drop(first);
            if !sock.ip().is_loopback() {
                eprintln!(
                    "warning: llmos mcp on {sock} has no authentication; anyone who reaches it can use the tools"
                );
            }
            let args = a.clone();
            // Each session gets its own tools (its own Python state).
            let factory: llmos_mcp::server::ToolFactory =
                Arc::new(move || tools(&args, &mut |_| {}).unwrap_or_default());
            llmos_mcp::server::serve_http(sock, factory, |url| {
                eprintln!(
                    "llmos mcp: serving {} over streamable HTTP; listening on {url}",
                    names.join(", ")
                );
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
