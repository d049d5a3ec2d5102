//! Tokenize stdin with a GGUF model's tokenizer and print the ids as a list,
//! like llama.cpp's `llama-tokenize --stdin --ids --no-escape`.
//!
//! ```text
//! cargo run -p llmos-text --example tokenize -- model.gguf [--no-bos] [--no-parse-special] < prompt.txt
//! ```

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: tokenize MODEL.gguf [--no-bos] [--no-parse-special] < text");
        return ExitCode::from(2);
    };
    let add_special = !args.iter().any(|a| a == "--no-bos");
    let parse_special = !args.iter().any(|a| a == "--no-parse-special");
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let tok = match llmos_gguf::GgufFile::open(path)
        .map_err(|e| e.to_string())
        .and_then(|g| llmos_text::Tokenizer::from_gguf(&g).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ids = tok.encode(&text, add_special, parse_special);
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    println!("[{}]", list.join(", "));
    ExitCode::SUCCESS
}
