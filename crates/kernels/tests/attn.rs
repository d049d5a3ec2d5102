//! The attention kernels against their scalar twins, on random rows with
//! the shapes the models use (head sizes 64, 128, 256, odd sizes for tails).

use half::f16;
use llmos_kernels::attn;

fn rows(n: usize, seed: u32) -> Vec<f16> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            f16::from_f32((s % 2001) as f32 / 1000.0 - 1.0)
        })
        .collect()
}

#[test]
fn qk_matches_scalar() {
    for hd in [1, 7, 8, 24, 64, 100, 128, 256] {
        for n in [1, 2, 5, 64, 333] {
            let stride = 3 * hd + 5;
            let q = rows(hd, 1);
            let keys = rows(n * stride, 2);
            let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
            attn::qk_f16(&q, &keys, stride, hd, 0.125, &mut a);
            attn::qk_f16_scalar(&q, &keys, stride, hd, 0.125, &mut b);
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-5 * hd as f32,
                    "hd={hd} n={n}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn exp_matches_std() {
    for n in [0, 1, 7, 8, 9, 100] {
        let mut a: Vec<f32> = (0..n).map(|i| -(i as f32) * 0.9 + 3.0).collect();
        a.extend([-87.0, -80.5, 88.0, -0.0, 1e-7]);
        let mut b = a.clone();
        let sa = attn::exp_sub_sum(&mut a, 2.5);
        let sb = attn::exp_sub_sum_scalar(&mut b, 2.5);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 3e-7 * y.abs() + 1e-37, "{x} vs {y}");
        }
        assert!((sa - sb).abs() <= 1e-6 * sb.abs(), "{sa} vs {sb}");
    }
}

#[test]
fn pv_matches_scalar() {
    for hd in [1, 9, 64, 128, 256] {
        for n in [1, 2, 3, 64, 257] {
            let stride = 2 * hd + 3;
            let vals = rows(n * stride, 3);
            let probs: Vec<f32> = (0..n)
                .map(|j| ((j * 37 % 11) as f32 + 0.5) / 11.0)
                .collect();
            let (mut a, mut b) = (vec![1f32; hd], vec![2f32; hd]);
            attn::pv_f16(&mut a, &probs, 0.3, &vals, stride, hd);
            attn::pv_f16_scalar(&mut b, &probs, 0.3, &vals, stride, hd);
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-5 * n as f32,
                    "hd={hd} n={n}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
#[should_panic(expected = "overrun")]
fn short_cache_panics_with_a_message() {
    let q = rows(64, 1);
    let keys = rows(100, 2);
    let mut s = vec![0f32; 2];
    attn::qk_f16(&q, &keys, 64, 0, 1.0, &mut s);
}
