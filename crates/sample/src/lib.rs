//! llmos-sample: logits → token.
//!
//! The chain follows llama.cpp's default order: penalties → top-k → top-p →
//! min-p → temperature → draw. Temperature ≤ 0 means greedy (argmax, with
//! penalties still applied). The random stream is a hand-written SplitMix64 so
//! that the same seed gives the same tokens across llmos versions and
//! platforms, which a general-purpose RNG crate does not promise.

use std::collections::HashMap;

/// Sampling settings. `Default` is greedy with no penalties.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// ≤ 0: greedy.
    pub temperature: f32,
    /// 0: disabled.
    pub top_k: usize,
    /// 1.0: disabled.
    pub top_p: f32,
    /// 0.0: disabled.
    pub min_p: f32,
    /// 1.0: disabled. Divides positive logits and multiplies negative ones of recent tokens.
    pub repeat_penalty: f32,
    /// Subtracted once from the logit of every token seen in the window.
    pub presence_penalty: f32,
    /// Subtracted per occurrence in the window.
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties look at (0: none).
    pub penalty_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
        }
    }
}

#[derive(thiserror::Error, Debug, PartialEq)]
pub enum SampleError {
    #[error("invalid sampling setting {name} = {value}: {why}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("cannot sample from an empty logits vector")]
    EmptyLogits,
}

impl SamplerConfig {
    /// Checks ranges; every bad value gets an error naming it.
    pub fn validate(&self) -> Result<(), SampleError> {
        let bad = |name, value: f32, why| SampleError::InvalidSetting {
            name,
            value: value.to_string(),
            why,
        };
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(bad(
                "temperature",
                self.temperature,
                "must be a finite number ≥ 0",
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(bad("top_p", self.top_p, "must be in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(bad("min_p", self.min_p, "must be in [0, 1]"));
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return Err(bad(
                "repeat_penalty",
                self.repeat_penalty,
                "must be a finite number > 0",
            ));
        }
        for (name, v) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if !v.is_finite() || !(-2.0..=2.0).contains(&v) {
                return Err(bad(name, v, "must be in [-2, 2]"));
            }
        }
        Ok(())
    }
}

/// SplitMix64: tiny, fast, and stable forever for a given seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A sampler with its buffers; reuse one per sequence so the token loop does
/// not allocate.
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
    cand: Vec<(u32, f32)>,
    counts: HashMap<u32, u32>,
}

impl Sampler {
    /// # Errors
    /// Returns [`SampleError::InvalidSetting`] for out-of-range settings.
    pub fn new(cfg: SamplerConfig) -> Result<Sampler, SampleError> {
        cfg.validate()?;
        let rng = Rng::new(cfg.seed);
        Ok(Sampler {
            cfg,
            rng,
            cand: Vec::new(),
            counts: HashMap::new(),
        })
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Picks the next token. `logits` is modified (penalties); `history` is
    /// every token so far (prompt and generated), of which the last
    /// `penalty_last_n` are penalised.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> Result<u32, SampleError> {
        if logits.is_empty() {
            return Err(SampleError::EmptyLogits);
        }
        self.apply_penalties(logits, history);
        if self.cfg.temperature <= 0.0 {
            return Ok(argmax(logits));
        }
        self.cand.clear();
        self.cand
            .extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        // Sorted by logit, descending; ties by id so the order is deterministic.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = if self.cfg.top_k == 0 {
            self.cand.len()
        } else {
            self.cfg.top_k.min(self.cand.len())
        };
        if k < self.cand.len() {
            self.cand.select_nth_unstable_by(k - 1, by_logit);
            self.cand.truncate(k);
        }
        self.cand.sort_unstable_by(by_logit);
        // Probabilities at temperature 1 for top-p and min-p (llama.cpp order), then temperature.
        let max = self.cand[0].1;
        let mut probs: Vec<f64> = self
            .cand
            .iter()
            .map(|c| ((c.1 - max) as f64).exp())
            .collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        let mut keep = self.cand.len();
        if self.cfg.top_p < 1.0 {
            let mut cum = 0.0;
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.cfg.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
        }
        if self.cfg.min_p > 0.0 {
            let threshold = probs[0] * self.cfg.min_p as f64;
            keep = keep.min(probs.iter().take_while(|&&p| p >= threshold).count().max(1));
        }
        self.cand.truncate(keep);
        let t = self.cfg.temperature;
        let max = self.cand[0].1 / t;
        let weights: Vec<f64> = self
            .cand
            .iter()
            .map(|c| ((c.1 / t - max) as f64).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut r = self.rng.next_f64() * total;
        for (c, w) in self.cand.iter().zip(&weights) {
            if r < *w {
                return Ok(c.0);
            }
            r -= w;
        }
        Ok(self.cand[self.cand.len() - 1].0)
    }

    fn apply_penalties(&mut self, logits: &mut [f32], history: &[u32]) {
        let c = &self.cfg;
        if c.penalty_last_n == 0
            || (c.repeat_penalty == 1.0 && c.presence_penalty == 0.0 && c.frequency_penalty == 0.0)
        {
            return;
        }
        self.counts.clear();
        let start = history.len().saturating_sub(c.penalty_last_n);
        for &t in &history[start..] {
            *self.counts.entry(t).or_insert(0) += 1;
        }
        for (&tok, &n) in &self.counts {
            let Some(l) = logits.get_mut(tok as usize) else {
                continue;
            };
            if *l > 0.0 {
                *l /= c.repeat_penalty;
            } else {
                *l *= c.repeat_penalty;
            }
            *l -= n as f32 * c.frequency_penalty + c.presence_penalty;
        }
    }
}

/// Index of the largest logit; the first one wins ties (as llama.cpp's greedy sampler).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Natural-log softmax probabilities for the `n` most likely tokens, for
/// logprobs output: (token, logprob), most likely first.
pub fn top_logprobs(logits: &[f32], n: usize) -> Vec<(u32, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max as f64
        + logits
            .iter()
            .map(|&l| ((l - max) as f64).exp())
            .sum::<f64>()
            .ln();
    let mut idx: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, l))
        .collect();
    let n = n.min(idx.len());
    if n == 0 {
        return Vec::new();
    }
    idx.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
    idx.truncate(n);
    idx.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    idx.into_iter()
        .map(|(i, l)| (i, (l as f64 - lse) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.0, 0.5, 2.9]
    }

    #[test]
    fn greedy_picks_argmax() {
        let mut s = Sampler::new(SamplerConfig::default()).unwrap();
        assert_eq!(s.sample(&mut logits(), &[]).unwrap(), 1);
    }

    #[test]
    fn repeat_penalty_changes_greedy_choice() {
        let cfg = SamplerConfig {
            repeat_penalty: 1.5,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        // token 1 was seen: 3.0 / 1.5 = 2.0 < 2.9
        assert_eq!(s.sample(&mut logits(), &[1]).unwrap(), 4);
    }

    #[test]
    fn frequency_and_presence_penalties() {
        let cfg = SamplerConfig {
            frequency_penalty: 0.2,
            presence_penalty: 0.5,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        let mut l = logits();
        s.sample(&mut l, &[4, 4]).unwrap();
        assert!((l[4] - (2.9 - 0.4 - 0.5)).abs() < 1e-6);
    }

    #[test]
    fn same_seed_same_tokens_different_seed_differs() {
        let run = |seed| {
            let cfg = SamplerConfig {
                temperature: 1.5,
                seed,
                ..Default::default()
            };
            let mut s = Sampler::new(cfg).unwrap();
            (0..64)
                .map(|_| s.sample(&mut logits(), &[]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let cfg = SamplerConfig {
            temperature: 5.0,
            top_k: 1,
            seed: 3,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits(), &[]).unwrap(), 1);
        }
    }

    #[test]
    fn top_p_and_min_p_cut_the_tail() {
        // With a dominant token and tiny top_p only it survives.
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_p: 0.01,
            seed: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits(), &[]).unwrap(), 1);
        }
        let cfg = SamplerConfig {
            temperature: 1.0,
            min_p: 0.95,
            seed: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        let picks: Vec<u32> = (0..50)
            .map(|_| s.sample(&mut logits(), &[]).unwrap())
            .collect();
        // exp(2.9-3.0) = 0.905 < 0.95, so only token 1 remains.
        assert!(picks.iter().all(|&p| p == 1), "{picks:?}");
    }

    #[test]
    fn sampling_distribution_tracks_probabilities() {
        let cfg = SamplerConfig {
            temperature: 1.0,
            seed: 42,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        let l = vec![0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let n = 20000;
        let ones = (0..n)
            .filter(|_| s.sample(&mut l.clone(), &[]).unwrap() == 1)
            .count();
        let frac = ones as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.02, "frac {frac}");
    }

    #[test]
    fn bad_settings_are_named() {
        let err = Sampler::new(SamplerConfig {
            top_p: 0.0,
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("top_p"), "{err}");
        let err = Sampler::new(SamplerConfig {
            temperature: f32::NAN,
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("temperature"), "{err}");
    }

    #[test]
    fn logprobs_are_normalised() {
        let lp = top_logprobs(&logits(), 5);
        let total: f64 = lp.iter().map(|(_, l)| (*l as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(lp[0].0, 1);
    }
}
