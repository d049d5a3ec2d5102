//! Custom assistants: a profile is a TOML file that says who the agent is
//! (instructions added to the system prompt), which model and tools it
//! gets, which folders it knows (ingested into a disk index named after the
//! profile before the run, incrementally), and its limits.
//!
//! `llmos agent --profile P TASK`: `P` is a path (it has a `/` or ends in
//! `.toml`), else `$LLMOS_HOME/profiles/P.toml`, else a built-in profile
//! (`docs-helper`, the file `examples/profiles/docs-helper.toml`). Relative
//! paths in a profile are taken from the current directory, as the same
//! paths given as flags would be.
//!
//! Unknown keys and bad values are errors that name the file, the line and
//! the key (`docs.toml:7: limits.max_steps: invalid type: ...`).

use crate::agent::AgentArgs;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use llmos_store::Store;
use llmos_tools::Tool;
use serde::Deserialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use toml::Spanned;

/// The tools a profile may list.
pub const TOOLS: [&str; 6] = ["calculator", "python", "files", "browse", "search", "llm"];

/// Profiles built into the binary: (name, TOML).
pub const BUILTIN: [(&str, &str); 1] = [(
    "docs-helper",
    include_str!("../../../examples/profiles/docs-helper.toml"),
)];

/// The default model of the `llm` tool: bigger than the agent's default.
pub const LLM_TOOL_MODEL: &str = "qwen2.5-coder-1.5b-instruct";

/// A profile, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Where it came from (a path, or `built-in docs-helper`), for messages.
    pub source: String,
    pub name: String,
    pub description: String,
    pub instructions: String,
    pub model: Option<String>,
    /// The tools, in the order listed.
    pub tools: Vec<String>,
    /// Folders (or files) ingested into the index named after the profile.
    pub knowledge: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
    pub allow_writes: Vec<PathBuf>,
    pub browse: Vec<String>,
    /// The `llm` tool's model and answer length.
    pub llm_model: Option<String>,
    pub llm_max_tokens: Option<usize>,
    pub max_steps: Option<usize>,
    pub max_tokens: Option<usize>,
    pub ctx: Option<usize>,
}

/// A profile error: file, line, key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub msg: String,
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "profile {}:{}: {}", self.file, self.line, self.msg)
        } else {
            write!(
                f,
                "profile {}:{}: {}: {}",
                self.file, self.line, self.key, self.msg
            )
        }
    }
}

impl std::error::Error for ProfileError {}

// The file's shape. Every table denies unknown keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<Spanned<String>>,
    description: Option<String>,
    instructions: Option<String>,
    model: Option<Spanned<String>>,
    tools: Option<Vec<Spanned<String>>>,
    knowledge: Option<Vec<Spanned<String>>>,
    files: Option<RawFiles>,
    browse: Option<RawBrowse>,
    llm: Option<RawLlm>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    #[serde(default)]
    roots: Vec<Spanned<String>>,
    #[serde(default)]
    allow_writes: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrowse {
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLlm {
    model: Option<Spanned<String>>,
    max_tokens: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_steps: Option<Spanned<usize>>,
    max_tokens: Option<Spanned<usize>>,
    ctx: Option<Spanned<usize>>,
}

/// 1-based line of byte `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].matches('\n').count() + 1
}

/// The dotted key whose value (or name) is at byte `pos`: the `[table]`
/// above it and the `key =` on its line (or above it, inside an array).
fn key_at(text: &str, pos: usize) -> String {
    let pos = pos.min(text.len());
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    let this = &text[start..end];
    let before = &text[..start];
    let mut table = String::new();
    let mut key = None;
    // The key is on this line (before '=' or at pos), or on the nearest line above with '='.
    if let Some((k, _)) = this.split_once('=') {
        key = Some(k.trim().to_string());
    } else if !this.trim_start().starts_with('[') {
        let word: String = text[pos..end]
            .chars()
            .take_while(|c| c.is_alphanumeric() || "_-".contains(*c))
            .collect();
        if !word.is_empty() {
            key = Some(word);
        }
    }
    for l in before.lines().rev() {
        let t = l.trim();
        if key.is_none() {
            if let Some((k, _)) = t.split_once('=') {
                key = Some(k.trim().to_string());
                continue;
            }
        }
        if t.starts_with('[') && !t.starts_with("[[") && t.ends_with(']') && !t.contains('=') {
            table = t.trim_matches(['[', ']']).trim().to_string();
            break;
        }
    }
    if this.trim_start().starts_with('[') && key.is_none() {
        return this.trim().trim_matches(['[', ']']).trim().to_string();
    }
    match (table.is_empty(), key) {
        (_, None) => table,
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

impl Profile {
    /// Parses and checks a profile. `file` names it in errors; `default_name`
    /// is used when the file has no `name`.
    ///
    /// # Errors
    /// TOML syntax, unknown keys, wrong types, unknown tools, bad names,
    /// zero limits, tools without what they need; each with its line and key.
    pub fn parse(text: &str, file: &str, default_name: &str) -> Result<Profile, ProfileError> {
        let err = |span: std::ops::Range<usize>, key: &str, msg: String| ProfileError {
            file: file.to_string(),
            line: line_of(text, span.start),
            key: key.to_string(),
            msg,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            // Syntax errors have no key; serde errors point at a key or a value.
            let key = if msg.starts_with("invalid")
                || msg.starts_with("unknown")
                || msg.starts_with("missing")
            {
                key_at(text, span.start)
            } else {
                String::new()
            };
            err(span, &key, msg)
        })?;
        let mut p = Profile {
            source: file.to_string(),
            ..Profile::default()
        };
        p.name = match &raw.name {
            Some(n) => {
                let v = n.get_ref().trim();
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                {
                    return Err(err(
                        n.span(),
                        "name",
                        format!("{v:?}: use letters, digits, '-' and '_' (it names the profile's index)"),
                    ));
                }
                v.to_string()
            }
            None => default_name.to_string(),
        };
        p.description = raw.description.unwrap_or_default().trim().to_string();
        p.instructions = raw.instructions.unwrap_or_default().trim().to_string();
        if let Some(m) = &raw.model {
            if m.get_ref().trim().is_empty() {
                return Err(err(
                    m.span(),
                    "model",
                    "empty; give a catalog name, a .gguf path or a URL".into(),
                ));
            }
            p.model = Some(m.get_ref().trim().to_string());
        }
        let paths = |v: &[Spanned<String>], key: &str| -> Result<Vec<PathBuf>, ProfileError> {
            v.iter()
                .map(|s| {
                    let path = expand(s.get_ref());
                    if !path.exists() {
                        return Err(err(
                            s.span(),
                            key,
                            format!(
                                "{} does not exist (relative paths are taken from the current directory)",
                                path.display()
                            ),
                        ));
                    }
                    Ok(path)
                })
                .collect()
        };
        if let Some(k) = &raw.knowledge {
            p.knowledge = paths(k, "knowledge")?;
        }
        if let Some(f) = &raw.files {
            p.files = paths(&f.roots, "files.roots")?;
            for (s, path) in f
                .allow_writes
                .iter()
                .zip(paths(&f.allow_writes, "files.allow_writes")?)
            {
                let inside = p.files.iter().any(|r| {
                    let (Ok(r), Ok(w)) = (std::fs::canonicalize(r), std::fs::canonicalize(&path))
                    else {
                        return false;
                    };
                    w.starts_with(r)
                });
                if !inside {
                    return Err(err(
                        s.span(),
                        "files.allow_writes",
                        format!("{} is not inside one of files.roots", path.display()),
                    ));
                }
                p.allow_writes.push(path);
            }
        }
        if let Some(b) = &raw.browse {
            for h in &b.hosts {
                let v = h.get_ref().trim().to_ascii_lowercase();
                if v.is_empty() || v.contains('/') || v.contains(char::is_whitespace) {
                    return Err(err(
                        h.span(),
                        "browse.hosts",
                        format!("{:?}: give a host (example.org, *.example.org or host:port), not a URL", h.get_ref()),
                    ));
                }
                p.browse.push(v);
            }
        }
        if let Some(l) = &raw.llm {
            if let Some(m) = &l.model {
                if m.get_ref().trim().is_empty() {
                    return Err(err(
                        m.span(),
                        "llm.model",
                        "empty; give a catalog name, a .gguf path or a URL".into(),
                    ));
                }
                p.llm_model = Some(m.get_ref().trim().to_string());
            }
            p.llm_max_tokens = positive(&l.max_tokens, "llm.max_tokens", &err)?;
        }
        if let Some(l) = &raw.limits {
            p.max_steps = positive(&l.max_steps, "limits.max_steps", &err)?;
            p.max_tokens = positive(&l.max_tokens, "limits.max_tokens", &err)?;
            p.ctx = positive(&l.ctx, "limits.ctx", &err)?;
        }
        match &raw.tools {
            Some(list) => {
                for t in list {
                    let name = t.get_ref().as_str();
                    if !TOOLS.contains(&name) {
                        return Err(err(
                            t.span(),
                            "tools",
                            format!("unknown tool {name:?}; the tools are {}", TOOLS.join(", ")),
                        ));
                    }
                    if !p.tools.iter().any(|x| x == name) {
                        p.tools.push(name.to_string());
                    }
                }
                let at = list.first().map_or(0..0, Spanned::span);
                let needs = |tool: &str, have: bool, what: &str| {
                    if p.tools.iter().any(|t| t == tool) && !have {
                        Err(err(at.clone(), "tools", format!("{tool:?} needs {what}")))
                    } else {
                        Ok(())
                    }
                };
                needs(
                    "search",
                    !p.knowledge.is_empty(),
                    "knowledge folders (knowledge = [\"docs\"])",
                )?;
                needs("files", !p.files.is_empty(), "[files] roots = [\"DIR\"]")?;
                needs(
                    "browse",
                    !p.browse.is_empty(),
                    "[browse] hosts = [\"example.org\"]",
                )?;
            }
            // No list: what the profile configures, plus the calculator.
            None => {
                p.tools.push("calculator".into());
                for (t, on) in [
                    ("search", !p.knowledge.is_empty()),
                    ("files", !p.files.is_empty()),
                    ("browse", !p.browse.is_empty()),
                    ("llm", raw.llm.is_some()),
                ] {
                    if on {
                        p.tools.push(t.into());
                    }
                }
            }
        }
        Ok(p)
    }

    /// The system prompt's addition: who the assistant is, and its instructions.
    pub fn prompt(&self) -> String {
        let mut s = format!("\n\nYou are the assistant \"{}\"", self.name);
        if !self.description.is_empty() {
            s.push_str(&format!(": {}", self.description));
        }
        s.push('.');
        if !self.instructions.is_empty() {
            s.push_str(&format!("\n{}", self.instructions));
        }
        s
    }

    /// Whether the profile allows `tool`.
    pub fn allows(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }
}

fn positive(
    v: &Option<Spanned<usize>>,
    key: &str,
    err: &dyn Fn(std::ops::Range<usize>, &str, String) -> ProfileError,
) -> Result<Option<usize>, ProfileError> {
    match v {
        Some(n) if *n.get_ref() == 0 => Err(err(n.span(), key, "must be at least 1".into())),
        Some(n) => Ok(Some(*n.get_ref())),
        None => Ok(None),
    }
}

/// `~/x` → `$HOME/x`; other paths as given.
fn expand(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(s),
    }
}

/// Finds and parses profile `spec` (a path, a name under
/// `$LLMOS_HOME/profiles/`, or a built-in name).
///
/// # Errors
/// Not found (the message lists what exists), unreadable, or invalid.
pub fn load(store: &Store, spec: &str) -> Result<Profile> {
    let is_path = spec.contains('/') || spec.ends_with(".toml");
    let dir = store.root().join("profiles");
    let path = if is_path {
        PathBuf::from(spec)
    } else {
        dir.join(format!("{spec}.toml"))
    };
    let stem = path
        .file_stem()
        .map_or_else(|| spec.to_string(), |s| s.to_string_lossy().into_owned());
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading profile {}", path.display()))?;
        return Ok(Profile::parse(&text, &path.display().to_string(), &stem)?);
    }
    if !is_path {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
            return Ok(Profile::parse(text, &format!("built-in {name}"), name)?);
        }
    }
    let mut known: Vec<String> = BUILTIN
        .iter()
        .map(|(n, _)| format!("{n} (built-in)"))
        .collect();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                if let Some(s) = p.file_stem() {
                    known.push(s.to_string_lossy().into_owned());
                }
            }
        }
    }
    anyhow::bail!(
        "no profile {spec:?}: {} does not exist; profiles: {} (a profile is a TOML file; see examples/profiles/)",
        path.display(),
        known.join(", ")
    )
}

/// Ingests the profile's knowledge into its index (new and changed files
/// only, with a progress bar where a person watches) and returns the
/// `search` tool over it.
///
/// # Errors
/// The embedding model cannot be loaded, a folder cannot be read, SQLite errors.
pub fn knowledge_tool(store: &Store, p: &Profile) -> Result<Box<dyn Tool>> {
    let path = crate::rag::index_path(store, &p.name)?;
    let emb = Arc::new(crate::rag::load_embedder(store)?);
    let mut index = llmos_rag::Index::open(&path)?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "knowledge {bar:30} {bytes}/{total_bytes} {msg} [{elapsed}<{eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = std::time::Instant::now();
    let r = llmos_rag::ingest(
        &mut index,
        emb.as_ref(),
        &p.knowledge,
        &llmos_rag::IngestOptions::default(),
        &mut |pr| {
            bar.set_length(pr.bytes_total);
            bar.set_position(pr.bytes_done);
            bar.set_message(format!("{}/{} files", pr.files_done, pr.files_total));
        },
    )
    .with_context(|| format!("ingesting the knowledge of profile {}", p.name))?;
    bar.finish_and_clear();
    for (f, why) in &r.skipped {
        eprintln!("knowledge: skipped {}: {why}", f.display());
    }
    eprintln!(
        "knowledge: {} added ({} chunks), {} unchanged, {} removed in {:.1}s (index {})",
        r.added,
        r.chunks,
        r.unchanged,
        r.removed,
        t0.elapsed().as_secs_f64(),
        path.display()
    );
    let about = if p.description.is_empty() {
        format!("the knowledge of {}", p.name)
    } else {
        format!("the documents of {} ({})", p.name, p.description)
    };
    Ok(Box::new(llmos_tools::search::Search::new(
        index,
        emb,
        &about,
        &p.knowledge,
    )))
}

/// The `llm` tool for the profile: its model loads on the first call.
pub fn llm_tool(
    store: &Store,
    p: &Profile,
    threads: usize,
    cancel: Arc<std::sync::atomic::AtomicBool>,
) -> Box<dyn Tool> {
    let model = p
        .llm_model
        .clone()
        .unwrap_or_else(|| LLM_TOOL_MODEL.to_string());
    let (store, spec) = (store.clone(), model.clone());
    let loader: llmos_agent::llm_tool::Loader = Box::new(move || {
        let path = store
            .resolve(&spec, true, crate::progress())
            .map_err(|e| e.to_string())?;
        llmos_engine::Engine::load(
            &path,
            llmos_engine::LoadOptions {
                threads,
                template: None,
            },
        )
        .map_err(|e| format!("loading {}: {e}", path.display()))
    });
    Box::new(llmos_agent::llm_tool::AskLlm::new(
        &model,
        loader,
        llmos_engine::GenParams {
            max_tokens: None,
            sampler: llmos_sample::SamplerConfig {
                temperature: 0.0,
                ..Default::default()
            },
            stop: Vec::new(),
        },
        p.llm_max_tokens.unwrap_or(512),
        0,
        cancel,
    ))
}

/// The flags with `--profile`'s settings where the command line gave none
/// (flags win; `--files`/`--browse` add to the profile's and enable their
/// tool), and the profile.
///
/// # Errors
/// The profile cannot be found or is invalid.
pub fn merge(store: &Store, a: &AgentArgs) -> Result<(AgentArgs, Option<Profile>)> {
    let mut a = a.clone();
    let Some(spec) = a.profile.clone() else {
        return Ok((a, None));
    };
    let mut p = load(store, &spec)?;
    a.model = a.model.or_else(|| p.model.clone());
    a.max_steps = a.max_steps.or(p.max_steps);
    a.max_tokens = a.max_tokens.or(p.max_tokens);
    if a.ctx == 0 {
        a.ctx = p.ctx.unwrap_or(0);
    }
    let t = &mut a.tools;
    if !t.files.is_empty() && !p.allows("files") {
        p.tools.push("files".into());
    }
    if !t.browse.is_empty() && !p.allows("browse") {
        p.tools.push("browse".into());
    }
    t.files = p.files.iter().cloned().chain(t.files.drain(..)).collect();
    t.allow_writes = p
        .allow_writes
        .iter()
        .cloned()
        .chain(t.allow_writes.drain(..))
        .collect();
    t.browse = p.browse.iter().cloned().chain(t.browse.drain(..)).collect();
    t.no_python = t.no_python || !p.allows("python");
    Ok((a, Some(p)))
}

/// The profile's own tools besides the built-ins: `search` (after ingesting
/// the knowledge) and `llm`.
///
/// # Errors
/// As [`knowledge_tool`]; the Ctrl-C handler cannot be installed.
pub fn extra_tools(store: &Store, p: &Profile, threads: usize) -> Result<Vec<Box<dyn Tool>>> {
    let mut tools = Vec::new();
    if p.allows("search") {
        tools.push(knowledge_tool(store, p)?);
    }
    if p.allows("llm") {
        tools.push(llm_tool(store, p, threads, crate::cancel_flag()?));
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, ProfileError> {
        Profile::parse(text, "p.toml", "p")
    }

    fn error(text: &str) -> ProfileError {
        match parse(text) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_full_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        let text = format!(
            r#"
name = "helper"
description = "Knows the notes"
instructions = """
Cite every fact."""
model = "qwen2.5-coder-1.5b-instruct"
tools = ["search", "calculator", "files", "browse", "llm", "search"]
knowledge = ["{d}"]

[files]
roots = ["{d}"]
allow_writes = ["{d}/out"]

[browse]
hosts = ["Docs.Python.org", "*.rust-lang.org"]

[llm]
model = "qwen2.5-coder-1.5b-instruct"
max_tokens = 300

[limits]
max_steps = 5
max_tokens = 2000
ctx = 8192
"#
        );
        let p = parse(&text).expect("parse");
        assert_eq!(p.name, "helper");
        assert_eq!(p.instructions, "Cite every fact.");
        assert_eq!(p.tools, ["search", "calculator", "files", "browse", "llm"]);
        assert_eq!(p.knowledge, [dir.path()]);
        assert_eq!(p.allow_writes, [dir.path().join("out")]);
        assert_eq!(p.browse, ["docs.python.org", "*.rust-lang.org"]);
        assert_eq!(
            (p.max_steps, p.max_tokens, p.ctx),
            (Some(5), Some(2000), Some(8192))
        );
        assert_eq!(p.llm_max_tokens, Some(300));
        assert!(p
            .prompt()
            .contains("\"helper\": Knows the notes.\nCite every fact."));
    }

    #[test]
    fn defaults_follow_what_is_configured() {
        let p = parse("description = \"x\"\n[browse]\nhosts = [\"example.org\"]\n").expect("parse");
        assert_eq!(p.name, "p");
        assert_eq!(p.tools, ["calculator", "browse"]);
        assert_eq!(p.model, None);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = error("name = \"a\"\n\ntemperature = 0.3\n");
        assert_eq!((e.line, e.key.as_str()), (3, "temperature"), "{e}");
        assert!(e.msg.contains("unknown field"), "{e}");
        assert!(
            e.to_string().starts_with("profile p.toml:3: temperature: "),
            "{e}"
        );

        let e = error("[limits]\nmax_steps = 3\nmax_step = 4\n");
        assert_eq!((e.line, e.key.as_str()), (3, "limits.max_step"), "{e}");
        let e = error("[limit]\nmax_steps = 3\n");
        assert_eq!((e.line, e.key.as_str()), (1, "limit"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = error("name = \"a\"\n[limits]\nmax_steps = \"five\"\n");
        assert_eq!((e.line, e.key.as_str()), (3, "limits.max_steps"), "{e}");
        assert!(e.msg.contains("invalid type"), "{e}");
        let e = error("[limits]\nmax_steps = -2\n");
        assert_eq!((e.line, e.key.as_str()), (2, "limits.max_steps"), "{e}");
        let e = error("[limits]\nctx = 0\n");
        assert_eq!((e.line, e.key.as_str()), (2, "limits.ctx"), "{e}");
        assert!(e.msg.contains("at least 1"), "{e}");
        let e = error("tools = [\n  \"calculator\",\n  \"shell\",\n]\n");
        assert_eq!((e.line, e.key.as_str()), (3, "tools"), "{e}");
        assert!(e.msg.contains("unknown tool \"shell\""), "{e}");
        let e = error("tools = \"calculator\"\n");
        assert_eq!((e.line, e.key.as_str()), (1, "tools"), "{e}");
        let e = error("name = \"my docs\"\n");
        assert_eq!((e.line, e.key.as_str()), (1, "name"), "{e}");
        let e = error("\n\nknowledge = [\"/no/such/folder/llmos\"]\n");
        assert_eq!((e.line, e.key.as_str()), (3, "knowledge"), "{e}");
        assert!(e.msg.contains("does not exist"), "{e}");
        let e = error("[browse]\nhosts = [\"https://example.org/x\"]\n");
        assert_eq!((e.line, e.key.as_str()), (2, "browse.hosts"), "{e}");
        let e = error("tools = [\"search\"]\n");
        assert!(e.msg.contains("needs knowledge"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = error("name = \"a\"\ntools = [\"calculator\"\n");
        assert!(e.line >= 2, "{e}");
        // An unclosed string: the next line is read as a key without '='.
        let e = error("name = \"a\nx\"\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn built_in_profiles_parse() {
        for (name, text) in BUILTIN {
            // Their knowledge is relative to the current directory: point it
            // at a folder that exists here, and check the rest as written.
            let here = env!("CARGO_MANIFEST_DIR");
            let text: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("knowledge") {
                        format!("knowledge = [\"{here}\"]\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            let p = Profile::parse(&text, name, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name);
            assert!(p.allows("search"), "{name} answers from its knowledge");
        }
    }
}
