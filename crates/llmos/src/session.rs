//! `llmos sessions list|show|rm`: the agent's sessions in the recall store
//! (`$LLMOS_HOME/sessions.sqlite`), every message verbatim.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use llmos_agent::recall::RecallStore;
use llmos_store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub cmd: Option<SessionsCmd>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum SessionsCmd {
    /// Every session: messages, paged-out messages, turns, archival notes.
    #[command(alias = "ls")]
    List,
    /// A session's messages (paged-out ones included), notes and archival memory.
    Show {
        name: String,
        /// Print every message in full (default: the first 400 bytes).
        #[arg(long)]
        full: bool,
    },
    /// Delete a session and everything it holds.
    Rm { name: String },
}

/// Where the sessions live.
pub fn store_path(store: &Store) -> PathBuf {
    store.root().join("sessions.sqlite")
}

pub fn open(store: &Store) -> Result<RecallStore> {
    let p = store_path(store);
    RecallStore::open(&p).with_context(|| format!("opening {}", p.display()))
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut c = max;
    while !s.is_char_boundary(c) {
        c -= 1;
    }
    format!("{}… [{} more bytes]", &s[..c], s.len() - c)
}

pub fn run(store: &Store, a: &SessionsArgs) -> Result<ExitCode> {
    let mut rs = open(store)?;
    let mut out = std::io::stdout().lock();
    match a.cmd.clone().unwrap_or(SessionsCmd::List) {
        SessionsCmd::List => {
            let all = rs.sessions()?;
            if all.is_empty() {
                eprintln!("no sessions yet; start one with `llmos agent --session NAME TASK`");
            }
            for s in all {
                writeln!(
                    out,
                    "{:<24} {:>3} turns {:>5} messages ({} paged out) {:>4} archival notes",
                    s.name, s.turns, s.messages, s.paged, s.archival
                )?;
            }
        }
        SessionsCmd::Show { name, full } => {
            let id = rs.session(&name, false)?;
            let max = if full { usize::MAX } else { 400 };
            for m in rs.messages(id)? {
                let mut tags = Vec::new();
                if m.paged {
                    tags.push("paged out");
                }
                if m.untrusted {
                    tags.push("untrusted");
                }
                let tags = if tags.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", tags.join(", "))
                };
                let who = match &m.message.name {
                    Some(n) => format!("{} {n}", m.message.role),
                    None => m.message.role.clone(),
                };
                writeln!(out, "── turn {} #{} {who}{tags}", m.turn, m.seq)?;
                writeln!(out, "{}", cut(m.message.content.trim_end(), max))?;
            }
            for s in rs.summaries(id)? {
                writeln!(
                    out,
                    "── note on turns {}–{} (messages #{}–#{}){}\n{}",
                    s.first_turn,
                    s.last_turn,
                    s.first_seq,
                    s.last_seq,
                    if s.untrusted { " (untrusted)" } else { "" },
                    s.text
                )?;
            }
            for n in rs.archival(id)? {
                writeln!(
                    out,
                    "── archival note {}{}\n{}",
                    n.id,
                    if n.untrusted { " (untrusted)" } else { "" },
                    cut(&n.text, max)
                )?;
            }
        }
        SessionsCmd::Rm { name } => {
            if rs.remove(&name)? {
                eprintln!("removed session {name}");
            } else {
                anyhow::bail!("no session named {name:?}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
