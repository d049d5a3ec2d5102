//! BPE pre-tokenization: splitting text into words before merges, exactly as
//! llama.cpp's `unicode_regex_split` does.
//!
//! llama.cpp runs a list of regexes one after another, each splitting the
//! pieces the previous one left. Three of its regexes (GPT-2, Llama-3, Qwen2)
//! have hand-written matchers there; we port those matchers rather than use a
//! regex engine, because their few departures from true regex semantics are
//! what the token ids depend on. Every other regex runs through fancy-regex on
//! the same "collapsed" text llama.cpp feeds to std::regex: each non-ASCII code
//! point is replaced by one stand-in character per Unicode category, and each
//! `\p{..}` in the pattern by a class of that stand-in plus the ASCII members.

use crate::error::TextError;
use crate::pre_types::{GPT2, LLAMA3, LLAMA3_I, NEWLINES, QWEN2};
use crate::unicode::{
    collapse, FlagTable, Flags, COLLAPSED_LETTER, COLLAPSED_MARK, COLLAPSED_NUMBER,
    COLLAPSED_PUNCTUATION, COLLAPSED_SYMBOL,
};
use std::ops::Range;

enum Step {
    Gpt2,
    /// Llama-3 and Qwen2 matchers differ only in how many digits make a word.
    Llama3 {
        max_digits: usize,
    },
    Newlines,
    Regex {
        re: fancy_regex::Regex,
        collapsed: bool,
    },
}

/// A compiled list of split steps.
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
    flags: FlagTable,
}

/// The text as code points, their flags, and where each starts in the UTF-8.
struct Cpts {
    chars: Vec<char>,
    flags: Vec<Flags>,
    /// byte offset of each char, plus the total length at the end
    bytes: Vec<usize>,
}

impl PreTokenizer {
    /// # Errors
    /// `TextError::PreTokenizerRegex` if a pattern does not compile.
    pub(crate) fn new(exprs: &[&str]) -> Result<PreTokenizer, TextError> {
        let mut steps = Vec::with_capacity(exprs.len());
        for &expr in exprs {
            let step = match expr {
                GPT2 => Step::Gpt2,
                LLAMA3 | LLAMA3_I => Step::Llama3 { max_digits: 3 },
                QWEN2 => Step::Llama3 { max_digits: 1 },
                NEWLINES => Step::Newlines,
                _ => {
                    let collapsed = uses_categories(expr);
                    let pattern = if collapsed {
                        collapse_regex(expr)?
                    } else {
                        expr.to_string()
                    };
                    let re = fancy_regex::Regex::new(&pattern).map_err(|e| {
                        TextError::PreTokenizerRegex {
                            regex: expr.to_string(),
                            message: e.to_string(),
                        }
                    })?;
                    Step::Regex { re, collapsed }
                }
            };
            steps.push(step);
        }
        Ok(PreTokenizer {
            steps,
            flags: FlagTable::new(),
        })
    }

    /// Splits `text` into words; returns their byte ranges, in order, covering
    /// all of `text`.
    pub(crate) fn split(&self, text: &str) -> Vec<Range<usize>> {
        let mut chars = Vec::with_capacity(text.len());
        let mut flags = Vec::with_capacity(text.len());
        let mut bytes = Vec::with_capacity(text.len() + 1);
        for (i, c) in text.char_indices() {
            chars.push(c);
            flags.push(self.flags.get(c));
            bytes.push(i);
        }
        bytes.push(text.len());
        let cp = Cpts {
            chars,
            flags,
            bytes,
        };

        let mut offsets = vec![cp.chars.len()];
        for step in &self.steps {
            let mut out = Vec::with_capacity(offsets.len() * 2);
            match step {
                Step::Gpt2 => {
                    for_each_segment(&offsets, |ini, end| split_gpt2(&cp, ini, end, &mut out))
                }
                Step::Llama3 { max_digits } => for_each_segment(&offsets, |ini, end| {
                    split_llama3(&cp, ini, end, *max_digits, &mut out)
                }),
                Step::Newlines => {
                    for_each_segment(&offsets, |ini, end| split_newlines(&cp, ini, end, &mut out))
                }
                Step::Regex { re, collapsed } => {
                    split_regex(&cp, re, *collapsed, &offsets, &mut out)
                }
            }
            offsets = out;
        }

        let mut words = Vec::with_capacity(offsets.len());
        let mut start = 0usize;
        for len in offsets {
            let end = start + len;
            if let (Some(&b0), Some(&b1)) = (cp.bytes.get(start), cp.bytes.get(end)) {
                if b1 > b0 {
                    words.push(b0..b1);
                }
            }
            start = end;
        }
        words
    }
}

fn for_each_segment(offsets: &[usize], mut f: impl FnMut(usize, usize)) {
    let mut start = 0;
    for &len in offsets {
        f(start, start + len);
        start += len;
    }
}

/// Reads code points and flags of one segment; outside it reads "nothing".
struct Segment<'a> {
    cp: &'a Cpts,
    ini: usize,
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

impl Segment<'_> {
    fn cpt(&self, pos: usize) -> Option<char> {
        if pos >= self.ini && pos < self.end {
            self.cp.chars.get(pos).copied()
        } else {
            None
        }
    }
    fn flags(&self, pos: usize) -> Flags {
        if pos >= self.ini && pos < self.end {
            self.cp.flags.get(pos).copied().unwrap_or_default()
        } else {
            Flags::default()
        }
    }
    /// Ends the current word at `end` (empty words are dropped).
    fn add(&mut self, end: usize) {
        let len = end.saturating_sub(self.prev_end);
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
    }
    /// `'s|'t|'re|'ve|'m|'ll|'d` at `pos`: the length matched, 0 if none.
    fn contraction(&self, pos: usize, fold_case: bool) -> usize {
        if self.cpt(pos) != Some('\'') || pos + 1 >= self.end {
            return 0;
        }
        let low = |c: Option<char>| c.map(|c| if fold_case { c.to_ascii_lowercase() } else { c });
        let next = low(self.cpt(pos + 1));
        if matches!(next, Some('s' | 't' | 'm' | 'd')) {
            return 2;
        }
        if pos + 2 < self.end {
            let next2 = low(self.cpt(pos + 2));
            if matches!(
                (next, next2),
                (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
            ) {
                return 3;
            }
        }
        0
    }
    /// Length of the whitespace run at `pos`, and the end of its last \r or \n.
    fn whitespace_run(&self, pos: usize) -> (usize, usize) {
        let mut n = 0;
        let mut last_rn = 0;
        while self.flags(pos + n).is_whitespace() {
            if matches!(self.cpt(pos + n), Some('\r' | '\n')) {
                last_rn = pos + n + 1;
            }
            n += 1;
        }
        (n, last_rn)
    }
}

fn not_ws_letter_number(f: Flags) -> bool {
    !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.is_some()
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
fn split_gpt2(cp: &Cpts, ini: usize, end: usize, out: &mut Vec<usize>) {
    let mut s = Segment {
        cp,
        ini,
        end,
        prev_end: ini,
        out,
    };
    let mut pos = ini;
    while pos < end {
        let n = s.contraction(pos, false);
        if n > 0 {
            pos += n;
            s.add(pos);
            continue;
        }
        let c = s.cpt(pos);
        let space = usize::from(c == Some(' '));
        let mut f2 = if space == 1 {
            s.flags(pos + 1)
        } else {
            s.flags(pos)
        };
        let classes: [fn(Flags) -> bool; 3] =
            [Flags::is_letter, Flags::is_number, not_ws_letter_number];
        if let Some(class) = classes.into_iter().find(|class| class(f2)) {
            pos += space;
            while class(f2) {
                pos += 1;
                f2 = s.flags(pos);
            }
            s.add(pos);
            continue;
        }
        let (nws, _) = s.whitespace_run(pos);
        if nws > 1 && pos + nws < end {
            // \s+(?!\S): leave the last whitespace to prefix the next word
            pos += nws - 1;
        } else if nws > 0 {
            pos += nws;
        } else {
            pos += 1;
        }
        s.add(pos);
    }
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
fn split_llama3(cp: &Cpts, ini: usize, end: usize, max_digits: usize, out: &mut Vec<usize>) {
    let mut s = Segment {
        cp,
        ini,
        end,
        prev_end: ini,
        out,
    };
    let mut pos = ini;
    while pos < end {
        let n = s.contraction(pos, true);
        if n > 0 {
            pos += n;
            s.add(pos);
            continue;
        }
        let c = s.cpt(pos);
        let f = s.flags(pos);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(matches!(c, Some('\r' | '\n')) || f.is_number())
            && (f.is_letter() || s.flags(pos + 1).is_letter())
        {
            pos += 1;
            while s.flags(pos).is_letter() {
                pos += 1;
            }
            s.add(pos);
            continue;
        }
        // \p{N}{1,max}
        if f.is_number() {
            let mut run_start = pos;
            while s.flags(pos).is_number() {
                pos += 1;
                if pos - run_start >= max_digits {
                    s.add(pos);
                    run_start = pos;
                }
            }
            s.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let space = usize::from(c == Some(' '));
        let mut f2 = if space == 1 { s.flags(pos + 1) } else { f };
        if !(f2.is_whitespace() || f2.is_letter() || f2.is_number()) && f.is_some() {
            pos += space;
            while not_ws_letter_number(f2) {
                pos += 1;
                f2 = s.flags(pos);
            }
            while matches!(s.cpt(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            s.add(pos);
            continue;
        }
        let (nws, last_rn) = s.whitespace_run(pos);
        if last_rn > 0 {
            // \s*[\r\n]+
            pos = last_rn;
        } else if nws > 1 && pos + nws < end {
            // \s+(?!\S)
            pos += nws - 1;
        } else if nws > 0 {
            pos += nws;
        } else {
            pos += 1;
        }
        s.add(pos);
    }
}

/// `[^\n]+|[\n]+`
fn split_newlines(cp: &Cpts, ini: usize, end: usize, out: &mut Vec<usize>) {
    let is_nl = |p: usize| cp.chars.get(p) == Some(&'\n');
    let mut pos = ini;
    while pos < end {
        let run = is_nl(pos);
        let start = pos;
        while pos < end && is_nl(pos) == run {
            pos += 1;
        }
        out.push(pos - start);
    }
}

/// A general regex: matches become words, and so do the gaps between them.
fn split_regex(
    cp: &Cpts,
    re: &fancy_regex::Regex,
    collapsed: bool,
    offsets: &[usize],
    out: &mut Vec<usize>,
) {
    // The subject llama.cpp hands to std::regex, one char per code point.
    let mut subject = String::with_capacity(cp.chars.len());
    let mut starts = Vec::with_capacity(cp.chars.len() + 1);
    for (&c, &f) in cp.chars.iter().zip(&cp.flags) {
        starts.push(subject.len());
        let c = if collapsed {
            collapse(c, f)
        } else if !c.is_ascii() && f.is_whitespace() {
            '\u{0B}'
        } else {
            c
        };
        subject.push(c);
    }
    starts.push(subject.len());
    let to_cpt = |byte: usize| starts.partition_point(|&b| b < byte);

    for_each_segment(offsets, |ini, end| {
        let (Some(&b0), Some(&b1)) = (starts.get(ini), starts.get(end)) else {
            return;
        };
        let Some(hay) = subject.get(b0..b1) else {
            return;
        };
        let mut done = ini;
        // A matcher error (backtracking limit) ends the matches; the rest of
        // the segment stays one word.
        for m in re.find_iter(hay).map_while(Result::ok) {
            let (ms, me) = (to_cpt(b0 + m.start()), to_cpt(b0 + m.end()));
            if me == ms {
                continue;
            }
            if ms > done {
                out.push(ms - done);
            }
            out.push(me - ms);
            done = me;
        }
        if end > done {
            out.push(end - done);
        }
    });
}

const CATEGORY_CLASSES: [(&str, char, &str); 10] = [
    ("\\p{N}", COLLAPSED_NUMBER, "0-9"),
    ("\\p{L}", COLLAPSED_LETTER, "A-Za-z"),
    (
        "\\p{P}",
        COLLAPSED_PUNCTUATION,
        "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}",
    ),
    ("\\p{M}", COLLAPSED_MARK, ""),
    ("\\p{S}", COLLAPSED_SYMBOL, "\\$\\+<->\\^`\\|~"),
    ("\\p{Lu}", COLLAPSED_LETTER, "A-Za-z"),
    ("\\p{Ll}", COLLAPSED_LETTER, "A-Za-z"),
    ("\\p{Lt}", COLLAPSED_LETTER, "A-Za-z"),
    ("\\p{Lm}", COLLAPSED_LETTER, "A-Za-z"),
    ("\\p{Lo}", COLLAPSED_LETTER, "A-Za-z"),
];

fn uses_categories(expr: &str) -> bool {
    CATEGORY_CLASSES.iter().any(|(p, _, _)| expr.contains(p))
}

/// Rewrites `\p{X}` into a class of X's stand-in char plus its ASCII members
/// (inside an existing `[...]`, without the extra brackets).
fn collapse_regex(expr: &str) -> Result<String, TextError> {
    if !expr.is_ascii() {
        return Err(TextError::PreTokenizerRegex {
            regex: expr.to_string(),
            message: "unicode categories together with non-ASCII characters are not supported"
                .into(),
        });
    }
    let b = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() * 2);
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        let escaped = i > 0 && b[i - 1] == b'\\';
        if ch == b'[' && !escaped {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && ch == b']' && !escaped {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if ch == b'\\' && i + 3 < b.len() && b[i + 1] == b'p' && b[i + 2] == b'{' {
            if let Some(close) = expr[i + 3..].find('}').map(|k| k + i + 3) {
                let pat = &expr[i..=close];
                if close <= i + 10 {
                    if let Some((_, rep, ascii)) =
                        CATEGORY_CLASSES.iter().find(|(p, _, _)| *p == pat)
                    {
                        if !inside {
                            out.push('[');
                        }
                        out.push(*rep);
                        out.push_str(ascii);
                        if !inside {
                            out.push(']');
                        }
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        out.push(char::from(ch));
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pre_types::{lookup_pre, DEFAULT, PRE_TYPES, STARCODER_DIGITS};

    fn words(exprs: &[&str], text: &str) -> Vec<String> {
        let Ok(p) = PreTokenizer::new(exprs) else {
            panic!("compile {exprs:?}")
        };
        p.split(text)
            .into_iter()
            .map(|r| text[r].to_string())
            .collect()
    }

    #[test]
    fn every_supported_pre_type_compiles() {
        for (names, spec) in PRE_TYPES {
            if let Err(e) = PreTokenizer::new(spec.exprs) {
                panic!("{names:?}: {e}");
            }
        }
    }

    #[test]
    fn gpt2_keeps_one_space_before_a_word() {
        assert_eq!(words(&[GPT2], "Hello   world"), ["Hello", "  ", " world"]);
        assert_eq!(words(&[GPT2], "a  "), ["a", "  "]);
        assert_eq!(
            words(&[GPT2], "don't DON'T"),
            ["don", "'t", " DON", "'", "T"]
        );
        assert_eq!(words(&[GPT2], "x=1+2;"), ["x", "=", "1", "+", "2", ";"]);
    }

    #[test]
    fn smollm_isolates_every_digit_and_the_space_before_it() {
        let spec = lookup_pre("smollm").map(|s| s.exprs).unwrap_or(&[]);
        assert_eq!(
            words(spec, "abc 12345 x"),
            ["abc", " ", "1", "2", "3", "4", "5", " x"]
        );
        // U+0663 ARABIC-INDIC DIGIT THREE is \p{N} too
        assert_eq!(words(spec, "a٣b"), ["a", "٣", "b"]);
    }

    #[test]
    fn qwen2_single_digits_and_newline_runs() {
        assert_eq!(
            words(&[QWEN2], "ab 123\n\n  x"),
            ["ab", " ", "1", "2", "3", "\n\n", " ", " x"]
        );
        assert_eq!(words(&[QWEN2], "I'M here"), ["I", "'M", " here"]);
        assert_eq!(words(&[QWEN2], "!!!\n\nok"), ["!!!\n\n", "ok"]);
        assert_eq!(words(&[QWEN2], "end "), ["end", " "]);
    }

    #[test]
    fn llama3_groups_digits_by_three() {
        assert_eq!(words(&[LLAMA3], "1234567"), ["123", "456", "7"]);
        assert_eq!(words(&[LLAMA3], " \t\nfoo"), [" \t\n", "foo"]);
    }

    #[test]
    fn default_pre_splits_punctuation_runs_first() {
        // "[\p{P}\$\+<=>\^~\|]+" runs before the GPT-2 pattern
        assert_eq!(words(&DEFAULT, "a...b"), ["a", "...", "b"]);
        assert_eq!(words(&DEFAULT, "12345"), ["123", "45"]);
    }

    #[test]
    fn collapse_regex_rewrites_categories() {
        let Ok(r) = collapse_regex("[^\\s\\p{L}]+|\\p{N}") else {
            panic!()
        };
        assert_eq!(
            r,
            format!("[^\\s{COLLAPSED_LETTER}A-Za-z]+|[{COLLAPSED_NUMBER}0-9]")
        );
    }

    #[test]
    fn contractions_fold_case_only_for_llama3_style() {
        assert_eq!(words(&[LLAMA3], "I'LL go"), ["I", "'LL", " go"]);
        assert_eq!(words(&[GPT2], "I'LL go"), ["I", "'", "LL", " go"]);
    }

    #[test]
    fn whitespace_before_newlines_joins_them() {
        assert_eq!(words(&[QWEN2], "a \r\n  b"), ["a", " \r\n", " ", " b"]);
        // U+3000 is whitespace, and [^\r\n\p{L}\p{N}] takes it before a word
        assert_eq!(words(&[QWEN2], "a\u{3000}b"), ["a", "\u{3000}b"]);
    }

    #[test]
    fn unassigned_code_points_group_like_symbols() {
        // U+0378 is unassigned (Cn): neither space, letter nor number
        assert_eq!(
            words(&[GPT2], "a\u{378}\u{378}b"),
            ["a", "\u{378}\u{378}", "b"]
        );
    }

    #[test]
    fn gpt2_numbers_take_the_space_but_smollm_digits_do_not() {
        assert_eq!(words(&[GPT2], "x 42"), ["x", " 42"]);
        assert_eq!(
            words(&[STARCODER_DIGITS, GPT2], "x 42"),
            ["x", " ", "4", "2"]
        );
    }

    #[test]
    fn newline_runs_alternate() {
        assert_eq!(words(&[NEWLINES], "ab\n\ncd\n"), ["ab", "\n\n", "cd", "\n"]);
    }

    #[test]
    fn collapsed_punctuation_class_covers_non_ascii() {
        // an em dash is \p{P} only through the collapsed stand-in character
        assert_eq!(words(&DEFAULT, "a\u{2014}b"), ["a", "\u{2014}", "b"]);
    }
}
