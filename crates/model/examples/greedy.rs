//! Greedy continuation from token ids, for debugging against a reference:
//! `cargo run -p llmos-model --example greedy -- MODEL.gguf N ID ID ...`
use llmos_gguf::GgufFile;
use llmos_kernels::pool::ThreadPool;
use llmos_model::{Logits, Model};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: greedy MODEL.gguf N_NEW ID...".into());
    }
    let model = Model::load(Arc::new(GgufFile::open(&args[1])?))?;
    let n_new: usize = args[2].parse()?;
    let mut toks: Vec<u32> = args[3..]
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let pool = ThreadPool::new(2);
    let mut st = model.new_state(512, 64);
    let t0 = std::time::Instant::now();
    let mut logits = model
        .forward(&pool, &mut st, &toks, 0, Logits::Last)?
        .to_vec();
    eprintln!("prefill {} tokens: {:?}", toks.len(), t0.elapsed());
    let top: Vec<(usize, f32)> = {
        let mut v: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(5);
        v
    };
    eprintln!("top5 after prompt: {top:?}");
    let t1 = std::time::Instant::now();
    let mut out = Vec::new();
    for _ in 0..n_new {
        let next = llmos_sample_argmax(&logits);
        out.push(next);
        let pos = toks.len();
        toks.push(next);
        logits = model
            .forward(&pool, &mut st, &[next], pos, Logits::Last)?
            .to_vec();
    }
    eprintln!("decode {n_new} tokens: {:?}", t1.elapsed());
    println!("{out:?}");
    Ok(())
}

fn llmos_sample_argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}
