//! Self-consistency of the forward pass: the same tokens must give the same
//! logits whether they arrive as one prefill matrix, in uneven chunks, or one
//! at a time (only float reassociation may differ).

mod common;
use common::model;
use llmos_kernels::pool::ThreadPool;
use llmos_model::{Logits, SeqStep};

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
    multi(name, &m, &pool, &toks);
}

/// Continuous batching: three sequences (a prefill, a one-token decode and a
/// short chunk) in one `forward_multi` step give bit for bit the logits each
/// gets alone: a user's results must not depend on who shares the batch.
fn multi(name: &str, m: &llmos_model::Model, pool: &ThreadPool, toks: &[u32]) {
    let nv = m.cfg.n_vocab;
    // Alone: a (20 tokens, all logits); b (30 prefilled, then 1); c (5, last 2).
    let mut sa = m.new_state(64, 64);
    let a_alone = m
        .forward(pool, &mut sa, &toks[..20], 0, Logits::All)
        .unwrap()
        .to_vec();
    let mut sb = m.new_state(64, 64);
    m.forward(pool, &mut sb, &toks[20..50], 0, Logits::Last)
        .unwrap();
    let b_alone = m
        .forward(pool, &mut sb, &toks[50..51], 30, Logits::Last)
        .unwrap()
        .to_vec();
    let mut sc = m.new_state(64, 64);
    let c_alone = m
        .forward(pool, &mut sc, &toks[51..56], 0, Logits::Tail(2))
        .unwrap()
        .to_vec();

    let (mut ka, mut kb, mut kc) = (m.new_kv(64), m.new_kv(64), m.new_kv(64));
    let mut scratch = m.new_scratch(32, 64);
    {
        let mut pre = [SeqStep {
            kv: &mut kb,
            tokens: &toks[20..50],
            pos: 0,
            logits: Logits::Last,
        }];
        m.forward_multi(pool, &mut scratch, &mut pre).unwrap();
    }
    let mut steps = [
        SeqStep {
            kv: &mut ka,
            tokens: &toks[..20],
            pos: 0,
            logits: Logits::All,
        },
        SeqStep {
            kv: &mut kb,
            tokens: &toks[50..51],
            pos: 30,
            logits: Logits::Last,
        },
        SeqStep {
            kv: &mut kc,
            tokens: &toks[51..56],
            pos: 0,
            logits: Logits::Tail(2),
        },
    ];
    let got = m
        .forward_multi(pool, &mut scratch, &mut steps)
        .unwrap()
        .to_vec();
    assert_eq!(got.len(), (20 + 1 + 2) * nv, "{name}: rows of logits");
    assert!(
        got[..20 * nv] == a_alone[..],
        "{name}: sequence a differs in a shared step"
    );
    assert!(
        got[20 * nv..21 * nv] == b_alone[..],
        "{name}: sequence b differs in a shared step"
    );
    assert!(
        got[21 * nv..] == c_alone[..],
        "{name}: sequence c differs in a shared step"
    );
    assert_eq!((ka.len(), kb.len(), kc.len()), (20, 31, 5));

    // Over the batch size: a clear error, and no cache touched.
    let mut kd = m.new_kv(64);
    let mut big = [SeqStep {
        kv: &mut kd,
        tokens: &toks[..40],
        pos: 0,
        logits: Logits::Last,
    }];
    let e = m.forward_multi(pool, &mut scratch, &mut big).unwrap_err();
    assert!(e.to_string().contains("exceeds the batch size 32"), "{e}");
    assert_eq!(kd.len(), 0);
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
