//! The capability guard: once untrusted data (a file, a web page, program
//! output) has entered the context, a side-effecting call needs approval.
//!
//! Side-effecting calls: `files` writes, `browse` to a host not yet visited,
//! `python` whose code looks like it writes files (a static check before
//! the call; files the sandbox reports afterwards are logged too). A run
//! without a person to ask ([`Approval::Deny`]) refuses them. Every
//! decision is kept in [`Guard::log`] and shown with `--trace`.

use llmos_tools::{SideEffect, ToolOutput};
use serde_json::Value;
use std::collections::BTreeSet;

/// Who approves side effects after untrusted data entered the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Approval {
    /// Nobody can be asked (non-interactive run): refuse.
    #[default]
    Deny,
    /// Allow everything (only for tests and trusted inputs).
    AllowAll,
}

/// What the guard decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse,
    /// Not a decision: something worth logging (e.g. files a sandbox wrote).
    Note,
}

/// One logged decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub step: usize,
    pub tool: String,
    pub verdict: Verdict,
    pub reason: String,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = match self.verdict {
            Verdict::Allow => "allow",
            Verdict::Refuse => "REFUSE",
            Verdict::Note => "note",
        };
        write!(
            f,
            "guard: {v} {} (step {}): {}",
            self.tool, self.step, self.reason
        )
    }
}

/// The guard's state for one run.
#[derive(Debug, Default)]
pub struct Guard {
    pub approval: Approval,
    /// Where untrusted data first entered the context (tool and step).
    pub tainted_by: Option<(String, usize)>,
    visited_hosts: BTreeSet<String>,
    pub log: Vec<Decision>,
}

/// What a call would change, if anything, judged before running it.
pub fn side_effect_of(tool: &str, args: &Value) -> Option<String> {
    let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("");
    match tool {
        "files" if s("operation") == "write" => Some(format!("write the file {}", s("path"))),
        "browse" => Some(format!("fetch {}", s("url"))),
        "python" if writes_files(s("code")) => Some("run Python code that writes files".into()),
        _ => None,
    }
}

/// A conservative static check for Python code that writes files.
fn writes_files(code: &str) -> bool {
    const PATTERNS: [&str; 14] = [
        ".write(",
        ".writelines(",
        "write_text(",
        "write_bytes(",
        "to_csv(",
        "to_json(",
        "to_excel(",
        "savefig(",
        "os.remove",
        "os.rename",
        "shutil.",
        "unlink(",
        "mkdir(",
        "np.save",
    ];
    if PATTERNS.iter().any(|p| code.contains(p)) {
        return true;
    }
    // open(..., 'w' | 'a' | 'x' | '+'): look at the mode argument of each open(.
    code.match_indices("open(").any(|(i, _)| {
        let rest = &code[i..];
        let call = &rest[..rest.find(')').unwrap_or(rest.len())];
        call.split(',').skip(1).any(|a| {
            let a = a.trim().trim_start_matches("mode=");
            (a.starts_with('\'') || a.starts_with('"')) && a.contains(['w', 'a', 'x', '+'])
        })
    })
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    auth.to_ascii_lowercase()
}

impl Guard {
    pub fn new(approval: Approval) -> Guard {
        Guard {
            approval,
            ..Guard::default()
        }
    }

    /// Whether untrusted data is in the context.
    pub fn tainted(&self) -> bool {
        self.tainted_by.is_some()
    }

    /// Decides whether `tool(args)` may run now; logs and returns the decision.
    pub fn check(&mut self, step: usize, tool: &str, args: &Value) -> Decision {
        let mut effect = side_effect_of(tool, args);
        if tool == "browse" {
            let host = host_of(args.get("url").and_then(Value::as_str).unwrap_or(""));
            if self.visited_hosts.contains(&host) {
                effect = None; // a host already visited is no new capability
            } else {
                effect = Some(format!("browse to a new host {host}"));
            }
        }
        let (verdict, reason) = match (effect, &self.tainted_by) {
            (None, _) => (Verdict::Allow, "no side effect".to_string()),
            (Some(e), None) => (Verdict::Allow, format!("{e}: no untrusted data in the context yet")),
            (Some(e), Some((src, at))) => match self.approval {
                Approval::AllowAll => (
                    Verdict::Allow,
                    format!("{e}: after untrusted data from {src} (step {at}); approved by policy allow-all"),
                ),
                Approval::Deny => (
                    Verdict::Refuse,
                    format!(
                        "{e}: a side effect after untrusted data entered the context (from {src}, step {at}) \
                         needs approval, and this run is non-interactive"
                    ),
                ),
            },
        };
        let d = Decision {
            step,
            tool: tool.to_string(),
            verdict,
            reason,
        };
        self.log.push(d.clone());
        d
    }

    /// Records what a call returned: untrusted content taints the context;
    /// fetched hosts count as visited; files written are noted.
    pub fn observe(&mut self, step: usize, tool: &str, out: &ToolOutput) -> Vec<Decision> {
        let mut notes = Vec::new();
        for e in &out.side_effects {
            match e {
                SideEffect::Fetched { host, .. } => {
                    self.visited_hosts.insert(host.to_ascii_lowercase());
                }
                SideEffect::FilesWritten(paths) => notes.push(Decision {
                    step,
                    tool: tool.to_string(),
                    verdict: Verdict::Note,
                    reason: format!(
                        "wrote {}{}",
                        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                        if self.tainted() { " (after untrusted data)" } else { "" }
                    ),
                }),
                SideEffect::WriteProposed(req) => notes.push(Decision {
                    step,
                    tool: tool.to_string(),
                    verdict: Verdict::Refuse,
                    reason: format!(
                        "proposed write to {} not applied: needs the user's approval, and this run is non-interactive",
                        req.path.display()
                    ),
                }),
            }
        }
        if out.untrusted && self.tainted_by.is_none() {
            self.tainted_by = Some((tool.to_string(), step));
            notes.push(Decision {
                step,
                tool: tool.to_string(),
                verdict: Verdict::Note,
                reason: "untrusted data entered the context: side effects now need approval".into(),
            });
        }
        self.log.extend(notes.iter().cloned());
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_write_detection() {
        assert!(writes_files("open('a.txt', 'w').write('x')"));
        assert!(writes_files("with open(\"o\", mode=\"a\") as f: pass"));
        assert!(writes_files("df.to_csv('x.csv')"));
        assert!(!writes_files("print(open('data.csv').read())"));
        assert!(!writes_files("print(2**200 // 7)"));
    }

    #[test]
    fn refuses_only_after_taint() {
        let mut g = Guard::new(Approval::Deny);
        let w = json!({"operation": "write", "path": "x", "content": "y"});
        assert_eq!(g.check(1, "files", &w).verdict, Verdict::Allow);
        g.observe(1, "files", &ToolOutput::ok("data").untrusted());
        assert!(g.tainted());
        assert_eq!(g.check(2, "files", &w).verdict, Verdict::Refuse);
        assert_eq!(
            g.check(2, "calculator", &json!({"expression": "1+1"}))
                .verdict,
            Verdict::Allow
        );
        assert_eq!(
            g.check(
                2,
                "browse",
                &json!({"url": "https://evil.example/?q=secret"})
            )
            .verdict,
            Verdict::Refuse
        );
    }

    #[test]
    fn visited_host_is_not_new() {
        let mut g = Guard::new(Approval::Deny);
        let out = ToolOutput {
            content: "page".into(),
            untrusted: true,
            side_effects: vec![SideEffect::Fetched {
                host: "docs.python.org".into(),
                url: "https://docs.python.org/3/".into(),
            }],
            ..ToolOutput::default()
        };
        assert_eq!(
            g.check(1, "browse", &json!({"url": "https://docs.python.org/3/"}))
                .verdict,
            Verdict::Allow
        );
        g.observe(1, "browse", &out);
        assert_eq!(
            g.check(
                2,
                "browse",
                &json!({"url": "https://docs.python.org/3/library/"})
            )
            .verdict,
            Verdict::Allow
        );
        assert_eq!(
            g.check(2, "browse", &json!({"url": "https://other.org/"}))
                .verdict,
            Verdict::Refuse
        );
    }
}
