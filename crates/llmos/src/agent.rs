//! `llmos agent`: the agent loop of llmos-agent on a local model, printing
//! each step (thought, call, result) as it happens, then the final answer
//! and what ended the run.

use anyhow::{Context, Result};
use clap::Args;
use llmos_agent::guard::{Approval, Verdict};
use llmos_agent::{Agent, EngineLlm, Event, Limits};
use llmos_engine::{Engine, GenParams, LoadOptions};
use llmos_sample::SamplerConfig;
use llmos_store::Store;
use llmos_tools::Tool;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// The agent's default model: small, and trained on hermes tool calls.
pub const AGENT_MODEL: &str = "qwen2.5-coder-0.5b-instruct";

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// Catalog name, .gguf path or URL (default: the profile's, else qwen2.5-coder-0.5b-instruct).
    #[arg(short, long)]
    pub model: Option<String>,
    /// A custom assistant: a profile name ($LLMOS_HOME/profiles/P.toml, or
    /// built in: docs-helper) or a path to a TOML file. Flags override it.
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// Most model turns before the run stops without an answer [default: 8].
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Most tokens generated over the whole run [default: 4096].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Also print every guard decision.
    #[arg(long)]
    pub trace: bool,
    /// For evaluation only (bench/injection): turn the guards off. Untrusted
    /// results reach the model unmarked, every side effect is approved
    /// without asking, and the output filter removes nothing. Never use it
    /// on data you do not trust.
    #[arg(long)]
    pub no_guards: bool,
    #[command(flatten)]
    pub tools: crate::cli::ToolArgs,
    /// Add the tools of an MCP server run as COMMAND (stdio; split like a
    /// shell would, e.g. 'python3 server.py --flag'; repeatable).
    #[arg(long, value_name = "COMMAND")]
    pub mcp: Vec<String>,
    /// Add the tools of a streamable-HTTP MCP server (repeatable).
    #[arg(long, value_name = "URL")]
    pub mcp_url: Vec<String>,
    /// Sampling temperature (0: greedy, the default).
    #[arg(long, default_value_t = 0.0)]
    pub temp: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Context size in tokens (default: min(4096, the model's)).
    #[arg(short, long, default_value_t = 0)]
    pub ctx: usize,
    /// Threads (default: all cores).
    #[arg(short, long, default_value_t = 0)]
    pub threads: usize,
    /// Keep the conversation in session NAME (in $LLMOS_HOME/sessions.sqlite):
    /// resume its history, store every message, page old turns out to the
    /// recall store, and give the model its memory tools.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// The task.
    pub task: String,
}

const SHOW: usize = 600;

fn shorten(s: &str) -> String {
    let s = s.trim_end();
    if s.len() <= SHOW {
        return s.to_string();
    }
    let mut cut = SHOW;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… [{} more bytes]", &s[..cut], s.len() - cut)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The built-in tools the flags ask for (shared by `llmos agent` and
/// `llmos mcp`); `note` hears why a tool was left out.
pub(crate) fn builtin_tools(
    t: &crate::cli::ToolArgs,
    note: &mut dyn FnMut(&str),
) -> Result<Vec<Box<dyn Tool>>> {
    let (files, allow_writes, browse) = (&t.files, &t.allow_writes, &t.browse);
    let mut tools: Vec<Box<dyn Tool>> = vec![Box::new(llmos_tools::calc::Calculator::default())];
    if !t.no_python {
        // Python reads the --files folders too (read-only): data questions need them.
        match llmos_tools::python::Python::new(llmos_tools::python::Limits::default()) {
            Ok(p) => tools.push(Box::new(p.read_only(files)?)),
            Err(e) => note(&format!("python tool omitted: {e}")),
        }
    }
    if !files.is_empty() {
        let mut f = llmos_tools::files::Files::new(files)?;
        if !allow_writes.is_empty() {
            f = f.allow_writes_under(allow_writes)?;
        }
        tools.push(Box::new(f));
    }
    if !browse.is_empty() {
        tools.push(Box::new(llmos_tools::browse::Browse::new(browse)));
    }
    Ok(tools)
}

pub fn run(store: &Store, a: &AgentArgs) -> Result<ExitCode> {
    let (a, profile) = crate::profile::merge(store, a)?;
    let a = &a;
    let mut tools = builtin_tools(&a.tools, &mut |n| eprintln!("note: {n}"))?;
    if let Some(p) = &profile {
        tools.retain(|t| p.allows(t.name()));
        tools.extend(crate::profile::extra_tools(store, p, a.threads)?);
    }
    // MCP servers' tools: their results are untrusted; names that collide get a prefix.
    let mut specs = Vec::new();
    for c in &a.mcp {
        specs.push(llmos_mcp::client::ServerSpec::command_line(c)?);
    }
    specs.extend(
        a.mcp_url
            .iter()
            .map(|u| llmos_mcp::client::ServerSpec::url(u)),
    );
    let builtin: Vec<String> = tools.iter().map(|t| t.name().to_string()).collect();
    let builtin: Vec<&str> = builtin.iter().map(String::as_str).collect();
    tools.extend(llmos_mcp::client::connect_all(
        &specs,
        &builtin,
        &llmos_mcp::client::Options::default(),
    )?);
    let mut agent = Agent::new(tools);
    agent.limits = Limits {
        max_steps: a.max_steps.unwrap_or(8),
        token_budget: a.max_tokens.unwrap_or(4096),
        ..Limits::default()
    };
    if let Some(p) = &profile {
        agent.system_prompt.push_str(&p.prompt());
    }
    // A person at the terminal is asked; otherwise side effects after untrusted data are refused.
    agent.approval = if std::io::stdin().is_terminal() {
        Approval::Ask
    } else {
        Approval::Deny
    };
    agent.ask = Some(Box::new(ask_on_terminal));
    agent.exfil = llmos_agent::exfil::Filter::new(&a.tools.browse);
    if a.no_guards {
        agent.unguard();
        eprintln!(
            "warning: --no-guards: no spotlighting, no capability policy (every side effect is approved), \
             no output filter; for evaluation only"
        );
    }
    let mut memory = match &a.session {
        Some(name) => {
            let m = llmos_agent::memory::Memory::open(crate::session::open(store)?, name)?;
            agent.tools.extend(m.tools());
            agent
                .system_prompt
                .push_str(llmos_agent::memory::SESSION_PROMPT);
            Some(m)
        }
        None => None,
    };

    let model = a.model.clone().unwrap_or_else(|| AGENT_MODEL.to_string());
    let path = store.resolve(&model, true, crate::progress())?;
    let engine = Engine::load(
        &path,
        LoadOptions {
            threads: a.threads,
            template: None,
        },
    )
    .with_context(|| format!("loading {}", path.display()))?;
    let params = GenParams {
        max_tokens: None,
        sampler: SamplerConfig {
            temperature: a.temp,
            seed: a.seed,
            ..SamplerConfig::default()
        },
        stop: Vec::new(),
    };
    let cancel = crate::cancel_flag()?;
    let mut llm = EngineLlm::new(&engine, &agent, params, a.ctx, &cancel)?;
    // An assistant with knowledge looks it up before answering.
    if profile.as_ref().is_some_and(|p| p.allows("search")) {
        llm.first_call = Some("search".into());
    }
    let names: Vec<&str> = agent.tools.iter().map(|t| t.name()).collect();
    eprintln!(
        "agent: {} with tools {}",
        path.file_stem()
            .map_or_else(|| model.clone(), |s| s.to_string_lossy().into_owned()),
        names.join(", ")
    );

    let mut out = std::io::stdout().lock();
    let trace = a.trace;
    let mut step = 0;
    // Passages the search tool returned, to cite for a model that names none.
    let mut passages: Vec<llmos_rag::ask::Source> = Vec::new();
    let outcome = agent.run_with(&mut llm, memory.as_mut(), &a.task, &mut |ev| {
        let _ = match ev {
            Event::Step(n) => {
                step = n;
                writeln!(out, "── step {n}")
            }
            Event::Thought(t) => writeln!(out, "thought: {}", shorten(t)),
            Event::Call { name, arguments } => writeln!(out, "call: {name} {arguments}"),
            Event::Result { name, output } => {
                passages.extend(output.sources.iter().cloned());
                let tag = if output.is_error {
                    " (error)"
                } else if output.untrusted {
                    " (untrusted data)"
                } else {
                    ""
                };
                // What the user sees passes the output filter too.
                let (shown, found) = agent.exfil.apply(&output.content);
                for f in found.iter().filter(|f| trace || f.blocked) {
                    let v = if f.blocked { "REFUSE" } else { "allow" };
                    let _ = writeln!(
                        out,
                        "guard: {v} result of {name} (step {step}): {}",
                        f.describe()
                    );
                }
                writeln!(out, "result of {name}{tag}:\n{}", indent(&shorten(&shown)))
            }
            // Refusals are always shown; the rest with --trace.
            Event::Guard(d) if trace || d.verdict == Verdict::Refuse => writeln!(out, "{d}"),
            Event::Guard(_) => Ok(()),
            Event::Answer(_) => Ok(()),
            Event::Context(b) => writeln!(out, "{b}"),
            Event::Paged(p) => writeln!(out, "{p}"),
        };
        let _ = out.flush();
    })?;
    let mut out = std::io::stdout().lock();
    if let Some(ans) = &outcome.answer {
        writeln!(out, "── answer\n{ans}")?;
        cite_for_the_model(&mut out, ans, &passages)?;
    }
    writeln!(
        out,
        "── ended: {} after {} step(s), {} tokens generated",
        outcome.end, outcome.steps, outcome.generated_tokens
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal (stderr, then a line from stdin); only y or yes is a yes.
fn ask_on_terminal(question: &str) -> bool {
    eprint!("{question}\nAllow? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// When the answer names none of the searched files (small models often
/// leave the citation out), cite for the model as `llmos ask` does: each
/// answer sentence under the passage holding its words. Word matching, not
/// a meaning check; sentences no passage holds are listed to check.
fn cite_for_the_model(
    out: &mut impl Write,
    answer: &str,
    passages: &[llmos_rag::ask::Source],
) -> std::io::Result<()> {
    if passages.is_empty() || passages.iter().any(|p| answer.contains(&p.path)) {
        return Ok(());
    }
    let support = llmos_rag::ask::attribute(answer, passages);
    if !support.iter().any(|s| s.source.is_some()) {
        return Ok(());
    }
    writeln!(
        out,
        "── sources (the answer names none; each sentence is matched to the passage holding its words)"
    )?;
    crate::rag::write_support(out, passages, &support)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passages() -> Vec<llmos_rag::ask::Source> {
        let p = |path: &str, a, b, excerpt: &str| llmos_rag::ask::Source {
            path: path.into(),
            line_start: a,
            line_end: b,
            excerpt: excerpt.into(),
        };
        vec![
            p("kb/ops/backup.md", 1, 6, "[1] kb/ops/backup.md:1-6 § Backups\n# Backups\n\nThe backup server is called zephyr.\n(source: kb/ops/backup.md:1-6)"),
            p("kb/net.md", 3, 4, "[2] kb/net.md:3-4\nThe VPN gateway is vpn1.\n(source: kb/net.md:3-4)"),
        ]
    }

    #[test]
    fn an_uncited_answer_is_cited_and_a_cited_one_left_alone() {
        let p = passages();
        let mut out = Vec::new();
        cite_for_the_model(&mut out, "The backup server is called zephyr.", &p).unwrap_or_default();
        let s = String::from_utf8_lossy(&out);
        assert!(
            s.contains("kb/ops/backup.md:1-6\n    \"The backup server is called zephyr.\""),
            "{s}"
        );
        assert!(!s.contains("kb/net.md"), "{s}");
        let mut out = Vec::new();
        cite_for_the_model(&mut out, "According to kb/ops/backup.md:1-6, zephyr.", &p)
            .unwrap_or_default();
        assert!(out.is_empty());
        let mut out = Vec::new();
        cite_for_the_model(&mut out, "Nothing matches here at all.", &p).unwrap_or_default();
        assert!(out.is_empty());
    }
}
