//! The tokenizer: vocabulary, special tokens, encode and decode, matching
//! llama.cpp's `llama_vocab` (llama-vocab.cpp) token for token.

use crate::bpe::Bpe;
use crate::detok::{build_pieces, clean_up_spaces};
use crate::error::TextError;
use crate::pre_types::{known_pre_names, lookup_pre, UNSUPPORTED_PRE};
use crate::pretokenize::PreTokenizer;
use crate::spec::TokenizerSpec;
use crate::spm;
use crate::strings::StringTable;
use llmos_gguf::GgufFile;

// llama_token_attr bits
pub(crate) const ATTR_UNKNOWN: u16 = 1 << 0;
pub(crate) const ATTR_UNUSED: u16 = 1 << 1;
pub(crate) const ATTR_NORMAL: u16 = 1 << 2;
pub(crate) const ATTR_CONTROL: u16 = 1 << 3;
pub(crate) const ATTR_USER_DEFINED: u16 = 1 << 4;
pub(crate) const ATTR_BYTE: u16 = 1 << 5;
pub(crate) const ATTR_LSTRIP: u16 = 1 << 7;
pub(crate) const ATTR_RSTRIP: u16 = 1 << 8;

/// Token texts llama.cpp takes for end-of-turn when no `eot_token_id` is given.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
/// FIM prefix/suffix/middle texts: not end-of-generation, but llama.cpp marks
/// them control, which decides how they partition and render.
const FIM_OTHER_TEXTS: &[&[&str]] = &[
    &[
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<｜fim▁begin｜>",
        "<PRE>",
        "▁<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
    ],
    &[
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<｜fim▁hole｜>",
        "<SUF>",
        "▁<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
    ],
    &[
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<｜fim▁end｜>",
        "<MID>",
        "▁<MID>",
        "<|code_middle|>",
        "<|middle|>",
    ],
];
/// Token texts that end generation whatever the metadata says.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

#[derive(Debug)]
pub(crate) enum Algo {
    Bpe(Box<Bpe>),
    Spm,
}

/// A tokenizer built from GGUF metadata. Immutable and `Sync`: encode and
/// decode take `&self` and allocate per call, so threads can share one.
#[derive(Debug)]
pub struct Tokenizer {
    pub(crate) algo: Algo,
    /// vocabulary strings, by id
    /// vocabulary strings (ids < n_vocab), then, for BPE, merge strings that
    /// are not tokens (ids >= n_vocab)
    pub(crate) strings: StringTable,
    n_vocab: usize,
    pub(crate) attrs: Vec<u16>,
    pub(crate) scores: Vec<f32>,
    /// detokenized bytes of every token (special tokens as their text), concatenated
    pieces: Vec<u8>,
    /// `pieces[piece_at[id]..piece_at[id + 1]]`
    piece_at: Vec<u32>,
    /// control, user-defined and unknown tokens, longest text first
    special_cache: Vec<u32>,
    /// SPM byte-fallback token of each byte
    pub(crate) byte_tokens: [Option<u32>; 256],
    bos: Option<u32>,
    eos: Option<u32>,
    pub(crate) unk: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

/// One piece of the input after special tokens are cut out.
enum Fragment {
    Text { start: usize, end: usize },
    Token(u32),
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`).
    ///
    /// # Errors
    /// Missing or mistyped keys, an unsupported `tokenizer.ggml.model`, or an
    /// unknown `tokenizer.ggml.pre` (llama.cpp refuses those too).
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer, TextError> {
        // Token and merge strings go straight from the file's values into the
        // string table, without a String each on the way.
        let meta = crate::spec::read_meta(f)?;
        let tokens =
            crate::spec::strings_of(f, "tokenizer.ggml.tokens")?.ok_or(TextError::MissingKey {
                key: "tokenizer.ggml.tokens",
            })?;
        let merges = crate::spec::strings_of(f, "tokenizer.ggml.merges")?.unwrap_or_default();
        Tokenizer::build(&meta, &tokens, &merges)
    }

    /// Builds a tokenizer from metadata already read.
    ///
    /// # Errors
    /// As [`Tokenizer::from_gguf`], plus per-token arrays shorter than the vocabulary.
    pub fn from_spec(spec: TokenizerSpec) -> Result<Tokenizer, TextError> {
        let tokens: Vec<&str> = spec.tokens.iter().map(String::as_str).collect();
        let merges: Vec<&str> = spec.merges.iter().map(String::as_str).collect();
        Tokenizer::build(&spec, &tokens, &merges)
    }

    fn build(
        spec: &TokenizerSpec,
        tokens: &[&str],
        merges: &[&str],
    ) -> Result<Tokenizer, TextError> {
        let n = tokens.len();
        if n == 0 {
            return Err(TextError::EmptyVocab);
        }
        if u32::try_from(n).is_err() {
            return Err(TextError::VocabTooLarge { n });
        }
        if let Some(s) = &spec.scores {
            if s.len() < n {
                return Err(TextError::ShortArray {
                    key: "tokenizer.ggml.scores",
                    found: s.len(),
                    n_vocab: n,
                });
            }
        }
        if let Some(t) = &spec.token_types {
            if t.len() < n {
                return Err(TextError::ShortArray {
                    key: "tokenizer.ggml.token_type",
                    found: t.len(),
                    n_vocab: n,
                });
            }
        }

        // Per-model defaults, then what the metadata says (llama_vocab::impl::load).
        let is_bpe = match spec.model.as_str() {
            "gpt2" => true,
            "llama" => false,
            _ => {
                return Err(TextError::UnsupportedModel {
                    model: spec.model.clone(),
                })
            }
        };
        let (mut bos, mut eos, mut unk): (Option<u64>, Option<u64>, Option<u64>) = if is_bpe {
            (Some(11), Some(11), None)
        } else {
            (Some(1), Some(2), Some(0))
        };
        let (mut add_bos, mut add_space_prefix, clean_spaces, pre_spec) = if is_bpe {
            let pre = match lookup_pre(&spec.pre) {
                Some(p) => p,
                None if UNSUPPORTED_PRE.contains(&spec.pre.as_str()) => {
                    return Err(TextError::UnsupportedPreTokenizer {
                        pre: spec.pre.clone(),
                    })
                }
                None => {
                    return Err(TextError::UnknownPreTokenizer {
                        pre: spec.pre.clone(),
                        known: known_pre_names(),
                    })
                }
            };
            if pre.no_default_bos {
                bos = None;
            }
            (pre.add_bos, false, pre.clean_spaces, Some(pre))
        } else {
            (true, true, false, None)
        };
        let mut add_eos = false;
        if let Some(v) = spec.add_space_prefix {
            add_space_prefix = v;
        }

        let n32 = n as u64;
        let mut strings =
            StringTable::with_capacity(n + n / 8, tokens.iter().map(|t| t.len()).sum());
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() {
                strings.push(&format!("[EMPTY_{i}]"));
            } else {
                strings.push(t);
            }
        }
        let scores: Vec<f32> = match &spec.scores {
            Some(s) => s.iter().take(n).copied().collect(),
            None => vec![0.0; n],
        };
        let mut attrs: Vec<u16> = match &spec.token_types {
            Some(types) => types.iter().take(n).map(|&t| type_to_attr(t)).collect(),
            None => vec![ATTR_NORMAL; n],
        };
        let lookup = |text: &str| strings.find(text);

        // Special ids: out-of-range defaults are dropped; out-of-range metadata keeps the default.
        let in_range = |id: Option<u64>| id.filter(|&i| i < n32);
        bos = in_range(bos);
        eos = in_range(eos);
        unk = in_range(unk);
        let pick = |default: Option<u64>, meta: Option<u64>| match meta {
            Some(m) if m < n32 => Some(m),
            _ => default,
        };
        bos = pick(bos, spec.ids.bos);
        eos = pick(eos, spec.ids.eos);
        unk = pick(unk, spec.ids.unk);
        let mut eot = pick(None, spec.ids.eot);
        let mut eom = pick(None, spec.ids.eom);
        let mut fim_pad = pick(None, spec.ids.fim_pad);
        let mut fim_rep = pick(None, spec.ids.fim_rep);
        let mut fim_sep = pick(None, spec.ids.fim_sep);
        if let Some(v) = spec.add_bos {
            add_bos = v;
        }
        if let Some(v) = spec.add_eos {
            add_eos = v;
        }

        // Auto-detect special tokens by their text; a detected token becomes control.
        // llama.cpp walks a hash map here, so when several texts of one list are in
        // the vocabulary its pick is arbitrary; we take the first text listed.
        let detect = |slot: &mut Option<u64>, list: &[&str], attrs: &mut [u16]| {
            if slot.is_some() {
                return;
            }
            if let Some(id) = list.iter().find_map(|t| lookup(t)) {
                *slot = Some(u64::from(id));
                if let Some(a) = attrs.get_mut(id as usize) {
                    *a |= ATTR_CONTROL;
                }
            }
        };
        detect(&mut eot, EOT_TEXTS, &mut attrs);
        detect(&mut eom, EOM_TEXTS, &mut attrs);
        for list in FIM_OTHER_TEXTS {
            detect(&mut None, list, &mut attrs);
        }
        detect(&mut fim_pad, FIM_PAD_TEXTS, &mut attrs);
        detect(&mut fim_rep, FIM_REP_TEXTS, &mut attrs);
        detect(&mut fim_sep, FIM_SEP_TEXTS, &mut attrs);

        // Control tokens named "unused" are unused.
        for (i, a) in attrs.iter_mut().enumerate() {
            if *a & ATTR_CONTROL != 0 && strings.get(i as u32).is_some_and(|t| t.contains("unused"))
            {
                *a |= ATTR_UNUSED;
            }
        }

        // End-of-generation set.
        let mut eog: Vec<u32> = Vec::new();
        let as_id = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
        eog.extend([fim_pad, fim_rep, fim_sep].into_iter().filter_map(as_id));
        for text in EOG_TEXTS {
            if let Some(id) = lookup(text) {
                eog.push(id);
                if let Some(a) = attrs.get_mut(id as usize) {
                    *a |= ATTR_CONTROL;
                }
            }
        }
        // gpt-oss: these always render
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = lookup(text) {
                if let Some(a) = attrs.get_mut(id as usize) {
                    *a = ATTR_USER_DEFINED;
                }
            }
        }
        eog.extend([eos, eot, eom].into_iter().filter_map(as_id));
        eog.sort_unstable();
        eog.dedup();
        // o200k_harmony / solar-open: "<|end|>" is not EOG when "<|return|>"+"<|call|>"
        // or "<|calls|>"+"<|flush|>" are.
        let eog_has =
            |eog: &[u32], t: &str| eog.iter().any(|&i| strings.get(i).is_some_and(|x| x == t));
        let has_call = eog_has(&eog, "<|call|>") || eog_has(&eog, "<|calls|>");
        let has_end = eog
            .iter()
            .copied()
            .find(|&i| strings.get(i).is_some_and(|x| x == "<|end|>"));
        if let Some(end_id) = has_end {
            if has_call && (eog_has(&eog, "<|return|>") || eog_has(&eog, "<|flush|>")) {
                eog.retain(|&i| i != end_id);
                if let Some(a) = attrs.get_mut(end_id as usize) {
                    *a = ATTR_USER_DEFINED;
                }
            }
        }
        // gemma4 / plamo: "</s>" is a normal token there.
        if eog_has(&eog, "<|tool_response>") || eog_has(&eog, "<|plamo:eos|>") {
            if let Some(s_id) = eog
                .iter()
                .copied()
                .find(|&i| strings.get(i).is_some_and(|x| x == "</s>"))
            {
                eog.retain(|&i| i != s_id);
                if let Some(a) = attrs.get_mut(s_id as usize) {
                    *a = ATTR_NORMAL;
                }
            }
        }

        // Special-token cache: longest text first (ties by id, for determinism).
        let mut special_cache: Vec<u32> = (0..n as u32)
            .filter(|&i| attrs[i as usize] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN) != 0)
            .collect();
        special_cache.sort_by(|&a, &b| {
            let len = |i: u32| strings.get(i).map_or(0, str::len);
            len(b).cmp(&len(a)).then(a.cmp(&b))
        });

        // Per-model strip flags llama.cpp sets by name.
        let name = spec.model_name.to_lowercase();
        let set_attr = |text: &str, bit: u16, on: bool, attrs: &mut [u16]| {
            if let Some(a) = lookup(text).and_then(|id| attrs.get_mut(id as usize)) {
                if on {
                    *a |= bit;
                } else {
                    *a &= !bit;
                }
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
            .iter()
            .any(|p| spec.pre.contains(p))
            || ["nomic-bert-moe", "jina-bert-v3"]
                .iter()
                .any(|p| spec.architecture.contains(p))
        {
            set_attr("<mask>", ATTR_LSTRIP, true, &mut attrs);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for &id in &special_cache {
                attrs[id as usize] |= ATTR_RSTRIP;
            }
            set_attr("</s>", ATTR_RSTRIP, true, &mut attrs);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set_attr(t, ATTR_RSTRIP, false, &mut attrs);
            }
        } else if name.contains("modern-bert") {
            set_attr("[MASK]", ATTR_LSTRIP, true, &mut attrs);
        }

        // SPM byte fallback: "<0xXX>", else the byte itself as a one-char token.
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = lookup(&format!("<0x{b:02X}>")).or_else(|| {
                u8::try_from(b)
                    .ok()
                    .filter(u8::is_ascii)
                    .and_then(|c| lookup(char::from(c).encode_utf8(&mut [0; 4])))
            });
        }

        let algo = match pre_spec {
            Some(pre) => {
                let pretok = PreTokenizer::new(pre.exprs)?;
                Algo::Bpe(Box::new(Bpe::new(
                    pretok,
                    merges,
                    &mut strings,
                    n as u32,
                    pre.ignore_merges,
                )))
            }
            None => Algo::Spm,
        };

        let (pieces, piece_at) = build_pieces(&strings, &attrs, is_bpe);
        Ok(Tokenizer {
            algo,
            strings,
            n_vocab: n,
            attrs,
            scores,
            pieces,
            piece_at,
            special_cache,
            byte_tokens,
            bos: as_id(bos),
            eos: as_id(eos),
            unk: as_id(unk),
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        })
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS where the model asks for
    /// them; `parse_special` lets control-token text in the input (e.g.
    /// `<|im_start|>`) become that token. User-defined tokens are matched
    /// whole either way, as in llama.cpp.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let fragments = if text.is_empty() {
            Vec::new()
        } else {
            self.partition(text, parse_special)
        };
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match &self.algo {
            Algo::Spm => {
                let mut prev_special = true;
                let mut buf = String::new();
                for frag in &fragments {
                    match *frag {
                        Fragment::Text { start, end } => {
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.push('\u{2581}');
                            }
                            for c in text.get(start..end).unwrap_or("").chars() {
                                buf.push(if c == ' ' { '\u{2581}' } else { c });
                            }
                            spm::tokenize(self, &buf, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Algo::Bpe(bpe) => {
                for frag in &fragments {
                    match *frag {
                        Fragment::Text { start, end } => {
                            bpe.tokenize(self, text.get(start..end).unwrap_or(""), &mut out)
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Cuts special tokens out of `text` (llama.cpp's `tokenizer_st_partition`):
    /// each special token in turn, longest first, splits every text fragment
    /// at each of its occurrences.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut frags = vec![Fragment::Text {
            start: 0,
            end: text.len(),
        }];
        let present = BytePairs::of(text.as_bytes());
        for &id in &self.special_cache {
            let attr = self.attrs[id as usize];
            if !parse_special && attr & (ATTR_CONTROL | ATTR_UNKNOWN) != 0 {
                continue;
            }
            let tok = self.strings.get(id).unwrap_or("");
            if !present.may_contain(tok.as_bytes()) || !text.contains(tok) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for frag in frags {
                let Fragment::Text { start, end } = frag else {
                    next.push(frag);
                    continue;
                };
                let mut pos = start;
                while let Some(m) = text
                    .get(pos..end)
                    .and_then(|s| s.find(tok))
                    .map(|k| k + pos)
                {
                    let mut left_end = m;
                    if attr & ATTR_LSTRIP != 0 {
                        while left_end > pos && is_c_space(text.as_bytes()[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > pos {
                        next.push(Fragment::Text {
                            start: pos,
                            end: left_end,
                        });
                    }
                    next.push(Fragment::Token(id));
                    pos = m + tok.len();
                    if attr & ATTR_RSTRIP != 0 {
                        while pos < end && is_c_space(text.as_bytes()[pos]) {
                            pos += 1;
                        }
                    }
                }
                if pos < end {
                    next.push(Fragment::Text { start: pos, end });
                }
            }
            frags = next;
        }
        frags
    }

    /// Detokenizes `ids` into text (invalid UTF-8 becomes U+FFFD). With
    /// `skip_special`, control tokens render as nothing and a leading BOS /
    /// trailing EOS the model adds itself are dropped (llama.cpp's
    /// `remove_special`); otherwise control tokens render as their text.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, skip_special)).into_owned()
    }

    /// As [`Tokenizer::decode`], as raw bytes.
    pub fn decode_bytes(&self, ids: &[u32], skip_special: bool) -> Vec<u8> {
        let mut ids = ids;
        let mut remove_space = self.add_space_prefix;
        if skip_special && self.add_bos {
            if let (Some(&first), Some(bos)) = (ids.first(), self.bos) {
                if first == bos {
                    remove_space = false;
                    ids = &ids[1..];
                }
            }
        }
        if skip_special && self.add_eos {
            if let (Some((&last, rest)), Some(eos)) = (ids.split_last(), self.eos) {
                if last == eos {
                    ids = rest;
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let hide = skip_special
                && self
                    .attrs
                    .get(id as usize)
                    .is_some_and(|a| a & (ATTR_CONTROL | ATTR_UNKNOWN) != 0);
            if !hide {
                let mut piece = self.token_bytes(id);
                if remove_space {
                    if let Some(rest) = piece.strip_prefix(b" ") {
                        piece = rest;
                    }
                }
                out.extend_from_slice(piece);
            }
            remove_space = false;
        }
        if self.clean_spaces {
            clean_up_spaces(&mut out);
        }
        out
    }

    /// The bytes token `id` detokenizes to: byte-level decoded for BPE, `▁` as
    /// space and `<0xXX>` as that byte for SentencePiece, control and
    /// user-defined tokens as their text. Empty for an out-of-range id.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        match (self.piece_at.get(i), self.piece_at.get(i + 1)) {
            (Some(&a), Some(&b)) => self.pieces.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The vocabulary string of token `id`.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.strings
            .get(id)
            .filter(|_| (id as usize) < self.n_vocab)
    }

    /// The id of the token whose vocabulary string is `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.strings
            .find(text)
            .filter(|&i| (i as usize) < self.n_vocab)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.n_vocab
    }

    /// Beginning-of-sequence token, if the vocabulary has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence token, if the vocabulary has one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos && self.eos.is_some()
    }

    /// Whether generating `id` ends the turn (EOS, EOT, `<|im_end|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation tokens, ascending.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.eog
    }

    /// Whether `id` is a control token (hidden when decoding with `skip_special`).
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & ATTR_CONTROL != 0)
    }
}

fn type_to_attr(t: i32) -> u16 {
    match t {
        1 => ATTR_NORMAL,
        2 => ATTR_UNKNOWN,
        3 => ATTR_CONTROL,
        4 => ATTR_USER_DEFINED,
        5 => ATTR_UNUSED,
        6 => ATTR_BYTE,
        _ => 0,
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Which byte pairs occur in a text: a cheap test that rules out most special
/// tokens before searching for them.
struct BytePairs {
    bits: Vec<u64>,
}

impl BytePairs {
    fn of(text: &[u8]) -> BytePairs {
        let mut bits = vec![0u64; 65536 / 64];
        for w in text.windows(2) {
            let k = usize::from(w[0]) << 8 | usize::from(w[1]);
            bits[k / 64] |= 1 << (k % 64);
        }
        BytePairs { bits }
    }
    fn may_contain(&self, needle: &[u8]) -> bool {
        match needle {
            [a, b, ..] => {
                let k = usize::from(*a) << 8 | usize::from(*b);
                self.bits
                    .get(k / 64)
                    .is_some_and(|w| w & (1 << (k % 64)) != 0)
            }
            _ => true,
        }
    }
}
