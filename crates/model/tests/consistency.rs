//! Self-consistency of the forward pass: the same tokens must give the same
//! logits whether they arrive as one prefill matrix, in uneven chunks, or one
//! at a time (only float reassociation may differ).

mod common;
use common::model;
use llmos_kernels::pool::ThreadPool;
use llmos_model::Logits;

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().map(|x| x.abs()).fold(0.0f32, f32::max).max(1e-6);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
        / scale
}

fn check(name: &str) {
    let Some(m) = model(name) else { return };
    let pool = ThreadPool::new(2);
    // 70 tokens: crosses the 64-token step and leaves ragged tiles.
    let toks: Vec<u32> = (0..70u32).map(|i| (i * 7919 + 13) % 1000 + 100).collect();

    let mut st = m.new_state(128, 64);
    let batch = m
        .forward(&pool, &mut st, &toks, 0, Logits::All)
        .unwrap()
        .to_vec();

    let mut st1 = m.new_state(128, 64);
    let nv = m.cfg.n_vocab;
    for (i, &t) in toks.iter().enumerate() {
        let one = m.forward(&pool, &mut st1, &[t], i, Logits::Last).unwrap();
        let d = max_rel_diff(&batch[i * nv..(i + 1) * nv], one);
        assert!(
            d < 2e-3,
            "{name}: token {i}: batch vs single-token logits differ by {d} (relative)"
        );
    }

    // Tail(n) is exactly the last n rows of All.
    let mut st3 = m.new_state(128, 64);
    let tail = m
        .forward(&pool, &mut st3, &toks, 0, Logits::Tail(30))
        .unwrap()
        .to_vec();
    assert_eq!(tail.len(), 30 * nv);
    assert!(
        max_rel_diff(&batch[40 * nv..], &tail) < 1e-6,
        "{name}: Tail(30) differs from All's last rows"
    );

    // Uneven chunks, continuing from the cache.
    let mut st2 = m.new_state(128, 13);
    m.forward(&pool, &mut st2, &toks[..5], 0, Logits::Last)
        .unwrap();
    let last = m
        .forward(&pool, &mut st2, &toks[5..], 5, Logits::Last)
        .unwrap();
    let d = max_rel_diff(&batch[69 * nv..], last);
    assert!(d < 2e-3, "{name}: chunked prefill differs by {d}");
}

#[test]
fn smollm2_batch_equals_sequential() {
    check("smollm2-135m-instruct");
}

#[test]
fn qwen2_batch_equals_sequential() {
    check("qwen2.5-coder-0.5b-instruct");
}

#[test]
fn gemma3_batch_equals_sequential() {
    check("gemma3-270m");
}
