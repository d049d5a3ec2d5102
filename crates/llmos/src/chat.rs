//! `llmos chat`: a multi-turn REPL. With a terminal it has line editing and a
//! history file; with piped stdin every line is one user turn.

use crate::cli::GenArgs;
use anyhow::Result;
use llmos_engine::{Engine, Finish};
use llmos_store::Store;
use llmos_text::Message;
use rustyline::error::ReadlineError;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

const HELP: &str = "commands: /clear (forget the conversation), /system TEXT, /exit (or Ctrl-D); Ctrl-C stops a reply";

pub fn repl(
    engine: &Engine,
    store: &Store,
    g: &GenArgs,
    system: Option<&str>,
    verbose: bool,
) -> Result<ExitCode> {
    let mut history: Vec<Message> = Vec::new();
    let mut system = system.map(str::to_string);
    let mut sess = engine.new_session(g.ctx);
    let cancel = crate::cancel_flag()?;
    let params = crate::gen_params(g);
    let interactive = std::io::stdin().is_terminal();

    let mut editor = if interactive {
        let mut ed = rustyline::DefaultEditor::new()?;
        let _ = ed.load_history(&store.root().join("chat_history.txt"));
        eprintln!("{HELP}");
        Some(ed)
    } else {
        None
    };
    let mut piped = std::io::stdin().lock().lines();

    loop {
        let line = match editor.as_mut() {
            Some(ed) => match ed.readline(">>> ") {
                Ok(l) => {
                    let _ = ed.add_history_entry(l.as_str());
                    l
                }
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            },
            None => match piped.next() {
                Some(l) => l?,
                None => break,
            },
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once(' ').map_or((line, ""), |(a, b)| (a, b)) {
            ("/exit" | "/quit" | "/bye", _) => break,
            ("/clear", _) => {
                history.clear();
                sess.clear();
                eprintln!("[conversation cleared]");
                continue;
            }
            ("/system", text) => {
                system = Some(text.to_string());
                history.clear();
                sess.clear();
                eprintln!("[system message set; conversation cleared]");
                continue;
            }
            ("/help" | "/?", _) => {
                eprintln!("{HELP}");
                continue;
            }
            _ => {}
        }
        history.push(Message::new("user", line));
        let mut msgs = Vec::with_capacity(history.len() + 1);
        if let Some(s) = &system {
            msgs.push(Message::new("system", s));
        }
        msgs.extend(history.iter().cloned());
        let prompt = engine.render_chat(&msgs)?;
        let ids = engine.encode_prompt(&prompt, true);
        if ids.len() >= sess.n_ctx() {
            history.pop();
            eprintln!(
                "error: the conversation is {} tokens and the context holds {}; use /clear or restart with a larger --ctx",
                ids.len(),
                sess.n_ctx()
            );
            continue;
        }
        cancel.store(false, Ordering::Relaxed);
        let mut stdout = std::io::stdout().lock();
        let out = engine.generate(&mut sess, &ids, &params, &cancel, |piece| {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        })?;
        writeln!(stdout)?;
        stdout.flush()?;
        crate::report(&out, verbose);
        if out.finish == Finish::Cancelled {
            cancel.store(false, Ordering::Relaxed);
        }
        history.push(Message::new("assistant", &out.text));
    }
    if let Some(ed) = editor.as_mut() {
        let _ = ed.save_history(&store.root().join("chat_history.txt"));
    }
    Ok(ExitCode::SUCCESS)
}
