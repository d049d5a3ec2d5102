//! `llmos`: the command-line front end. Thin by design: each subcommand parses
//! its flags, calls the libraries, prints, and maps errors to exit codes.

mod agent;
mod bench;
mod chat;
mod cli;
mod info;
mod mcp;
mod perplexity;
mod profile;
mod rag;
mod serve;
mod session;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command, GenArgs, ModelArgs};
use llmos_engine::{Engine, Finish, GenParams, LoadOptions};
use llmos_sample::SamplerConfig;
use llmos_store::{Progress, Store};
use llmos_text::{ChatTemplate, Message};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`llmos run ... | head`) is not an error worth a message.
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("error: {e:#}");
            // Ctrl-C during a pull is an interruption (130), not a failure.
            match e.downcast_ref::<llmos_store::StoreError>() {
                Some(se) => ExitCode::from(se.exit_code() as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let store = || Store::open(cli.home.clone()).context("opening the model store");
    match cli.command {
        Command::Run {
            model,
            gen,
            raw,
            system,
            verbose,
            file,
            prompt,
        } => {
            let store = store()?;
            let prompt = read_prompt(prompt.as_deref(), file.as_deref())?;
            let engine = load_engine(&store, &model, &gen)?;
            run(&engine, &gen, &prompt, raw, system.as_deref(), verbose)
        }
        Command::Chat {
            model,
            gen,
            system,
            verbose,
        } => {
            let store = store()?;
            let engine = load_engine(&store, &model, &gen)?;
            chat::repl(&engine, &store, &gen, system.as_deref(), verbose)
        }
        Command::Pull { model } => {
            let store = store()?;
            let path = store.pull(&model, progress())?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let store = store()?;
            let models = store.list()?;
            if models.is_empty() {
                eprintln!(
                    "no models in {}; try `llmos pull {}`",
                    store.root().display(),
                    llmos_store::DEFAULT_MODEL
                );
            }
            for m in models {
                println!(
                    "{:<32} {:>10}  {}",
                    m.name,
                    human_bytes(m.bytes),
                    m.path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { model } => {
            store()?.remove(&model)?;
            eprintln!("removed {model}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog => {
            for e in llmos_store::catalog() {
                println!(
                    "{:<32} {:>10}  {}",
                    e.name,
                    human_bytes(e.bytes),
                    e.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Info { model, all } => {
            let path = resolve(&store()?, &model.model)?;
            info::print(&path, all)
        }
        Command::Tokenize {
            model,
            ids,
            special,
            no_bos,
            text,
            file,
        } => {
            let path = resolve(&store()?, &model)?;
            let text = read_prompt(text.as_deref(), file.as_deref())?;
            let f = llmos_gguf::GgufFile::open(&path)?;
            let tk = llmos_text::Tokenizer::from_gguf(&f)?;
            let toks = tk.encode(&text, !no_bos, special);
            let mut out = std::io::stdout().lock();
            if ids {
                writeln!(out, "{}", serde_json::to_string(&toks)?)?;
            } else {
                for t in toks {
                    let piece = String::from_utf8_lossy(tk.token_bytes(t));
                    writeln!(out, "{t:>7} -> {piece:?}")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Perplexity(args) => {
            let path = resolve(&store()?, &args.model)?;
            perplexity::run(&path, &args)
        }
        Command::Bench(args) => {
            let path = resolve(&store()?, &args.model)?;
            bench::run(&path, &args)
        }
        Command::Serve(args) => serve::run(&store()?, &args),
        Command::Agent(args) => agent::run(&store()?, &args),
        Command::Sessions(args) => session::run(&store()?, &args),
        Command::Ingest(args) => rag::ingest(&store()?, &args),
        Command::Search(args) => rag::search(&store()?, &args),
        Command::Ask(args) => rag::ask(&store()?, &args),
        Command::Embed(args) => rag::embed(&store()?, &args),
        Command::Mcp(args) => mcp::run(&args),
    }
}

/// Progress bars only where a person watches.
pub(crate) fn progress() -> Progress {
    if std::io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Quiet
    }
}

/// A catalog name (pulled on first use), a path or a URL → a local file.
fn resolve(store: &Store, spec: &str) -> Result<PathBuf> {
    Ok(store.resolve(spec, true, progress())?)
}

fn load_engine(store: &Store, m: &ModelArgs, gen: &GenArgs) -> Result<Engine> {
    let path = resolve(store, &m.model)?;
    let template = match &gen.template {
        Some(t) => Some(load_template(t)?),
        None => None,
    };
    let engine = Engine::load(
        &path,
        LoadOptions {
            threads: gen.threads,
            template,
        },
    )
    .with_context(|| format!("loading {}", path.display()))?;
    if engine.template_source == llmos_engine::TemplateSource::Builtin {
        eprintln!(
            "note: {} has no chat template (a base model?); using the built-in {} format. \
             Base models often continue text better with --raw.",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            ),
            engine.model.cfg.arch.name()
        );
    }
    Ok(engine)
}

/// `--template NAME|FILE`: a built-in name, or a file holding Jinja source.
fn load_template(spec: &str) -> Result<ChatTemplate> {
    let p = Path::new(spec);
    if p.is_file() {
        let src = std::fs::read_to_string(p).with_context(|| format!("reading template {spec}"))?;
        return Ok(ChatTemplate::from_source(spec, &src, "", "")?);
    }
    ChatTemplate::builtin(spec)
        .with_context(|| format!("--template {spec}: not a file, and not a built-in name"))
}

/// The prompt from the argument, `-` (stdin) or `--file`, as valid UTF-8.
fn read_prompt(arg: Option<&str>, file: Option<&Path>) -> Result<String> {
    let (bytes, what) = match (arg, file) {
        (Some(_), Some(_)) => {
            bail!("give the prompt either as an argument or with --file, not both")
        }
        (None, Some(f)) => (
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
            f.display().to_string(),
        ),
        (Some("-"), None) | (None, None) => {
            if arg.is_none() && std::io::stdin().is_terminal() {
                bail!("no prompt given: pass it as an argument, with --file FILE, or on stdin");
            }
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("reading the prompt from stdin")?;
            (b, "stdin".to_string())
        }
        (Some(s), None) => return Ok(s.to_string()),
    };
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            bail!("{what}: invalid UTF-8 at byte {at}; the prompt must be UTF-8 text (convert it with e.g. `iconv -t UTF-8`)")
        }
    }
}

/// SIGINT sets the returned flag; a second SIGINT exits at once.
pub(crate) fn cancel_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    // From here on Ctrl-C means "stop generating", not "exit the process".
    llmos_store::set_default_sigint_between_pulls(false);
    // The conditional shutdown fires only if the flag is already set, so the
    // first Ctrl-C stops generation cleanly and the second one exits.
    signal_hook::flag::register_conditional_shutdown(
        signal_hook::consts::SIGINT,
        130,
        Arc::clone(&flag),
    )?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag))?;
    Ok(flag)
}

pub(crate) fn gen_params(g: &GenArgs) -> GenParams {
    GenParams {
        max_tokens: g.max_tokens,
        sampler: SamplerConfig {
            temperature: g.temp,
            top_k: g.top_k,
            top_p: g.top_p,
            min_p: g.min_p,
            repeat_penalty: g.repeat_penalty,
            presence_penalty: g.presence_penalty,
            frequency_penalty: g.frequency_penalty,
            penalty_last_n: g.repeat_last_n,
            seed: g.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            }),
        },
        stop: g.stop.clone(),
    }
}

fn run(
    engine: &Engine,
    g: &GenArgs,
    prompt: &str,
    raw: bool,
    system: Option<&str>,
    verbose: bool,
) -> Result<ExitCode> {
    let text = if raw {
        prompt.to_string()
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = system {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", prompt));
        engine.render_chat(&msgs)?
    };
    let ids = engine.encode_prompt(&text, !raw);
    let mut sess = engine.new_session(g.ctx);
    let cancel = cancel_flag()?;
    let params = gen_params(g);
    let mut stdout = std::io::stdout().lock();
    let mut write_err = None;
    let out = engine.generate(&mut sess, &ids, &params, &cancel, |piece| {
        if write_err.is_none() {
            if let Err(e) = stdout
                .write_all(piece.as_bytes())
                .and_then(|_| stdout.flush())
            {
                write_err = Some(e);
                cancel.store(true, Ordering::Relaxed);
            }
        }
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    writeln!(stdout)?;
    stdout.flush()?;
    report(&out, verbose);
    Ok(match out.finish {
        Finish::Cancelled => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}

pub(crate) fn report(out: &llmos_engine::GenOutput, verbose: bool) {
    match out.finish {
        Finish::ContextFull => {
            eprintln!("[stopped: the context window is full; raise --ctx for longer answers]")
        }
        Finish::Cancelled => eprintln!("[interrupted]"),
        _ => {}
    }
    if verbose {
        eprintln!(
            "prompt: {} tokens ({} cached) in {:.2} s, {:.1} tok/s | generation: {} tokens in {:.2} s, {:.1} tok/s | finish: {:?}",
            out.prompt_tokens,
            out.cached_tokens,
            out.prompt_secs,
            out.prompt_tps(),
            out.tokens.len(),
            out.gen_secs,
            out.gen_tps(),
            out.finish
        );
    }
}

pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
