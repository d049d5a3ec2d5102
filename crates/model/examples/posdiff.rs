//! Compare our logits at every prompt position with a reference fixture's
//! top-20 lists: `posdiff MODEL.gguf FIXTURE.json [prompt_index]`.
use llmos_gguf::GgufFile;
use llmos_kernels::pool::ThreadPool;
use llmos_model::{Logits, Model};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let m = Model::load(Arc::new(GgufFile::open(&a[1])?))?;
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&a[2])?)?;
    let k: usize = a.get(3).map_or(Ok(0), |s| s.parse())?;
    let p = &fx["prompts"][k];
    let ids: Vec<u32> = p["prompt_ids"]
        .as_array()
        .ok_or("ids")?
        .iter()
        .filter_map(|v| v.as_u64())
        .map(|v| v as u32)
        .collect();
    let pool = ThreadPool::new(2);
    let mut st = m.new_state(ids.len() + 8, 64);
    let nv = m.cfg.n_vocab;
    let all = m.forward(&pool, &mut st, &ids, 0, Logits::All)?.to_vec();
    for (i, pos) in p["positions"]
        .as_array()
        .ok_or("positions")?
        .iter()
        .enumerate()
    {
        let rid: Vec<u64> = pos["ids"]
            .as_array()
            .ok_or("ids")?
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        let rl: Vec<f64> = pos["logits"]
            .as_array()
            .ok_or("logits")?
            .iter()
            .filter_map(|v| v.as_f64())
            .collect();
        let row = &all[i * nv..(i + 1) * nv];
        let diffs: Vec<f64> = rid
            .iter()
            .zip(&rl)
            .map(|(&t, &l)| row[t as usize] as f64 - l)
            .collect();
        let maxd = diffs.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        println!("pos {i:>3} tok {:>6}: top20 max|Δ| {maxd:.4} mean Δ {mean:+.4}  ref top1 {} ({:.3}) ours {:.3}", pos["token"], rid[0], rl[0], row[rid[0] as usize]);
    }
    Ok(())
}
