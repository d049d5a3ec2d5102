//! Code point classes as llama.cpp's pre-tokenizers see them (Unicode 15.1),
//! and GPT-2's byte-to-unicode alphabet.

use crate::unicode_table::CATEGORY_RANGES;

/// Category flags of one code point (llama.cpp's `unicode_cpt_flags`).
/// `Flags::default()` (all zero) stands for "outside the text".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    bits: u16,
}

const UNDEFINED: u16 = 0x0001;
const NUMBER: u16 = 0x0002;
const LETTER: u16 = 0x0004;
const MARK: u16 = 0x0010;
const PUNCTUATION: u16 = 0x0020;
const SYMBOL: u16 = 0x0040;
const CATEGORIES: u16 = 0x00FF;
const WHITESPACE: u16 = 0x0100;

/// Unicode White_Space, the set llama.cpp marks `is_whitespace`.
const WHITESPACE_CPTS: [u32; 25] = [
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
];

impl Flags {
    pub(crate) fn of(c: char) -> Flags {
        let cp = c as u32;
        // Ranges are sorted by start; the last range whose start <= cp holds cp.
        let idx = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
        let mut bits = match idx.checked_sub(1).and_then(|i| CATEGORY_RANGES.get(i)) {
            Some(&(_, f)) => u16::from(f),
            None => UNDEFINED,
        };
        if WHITESPACE_CPTS.contains(&cp) {
            bits |= WHITESPACE;
        }
        Flags { bits }
    }
    pub(crate) fn is_number(self) -> bool {
        self.bits & NUMBER != 0
    }
    pub(crate) fn is_letter(self) -> bool {
        self.bits & LETTER != 0
    }
    pub(crate) fn is_whitespace(self) -> bool {
        self.bits & WHITESPACE != 0
    }
    /// False only for the "outside the text" value.
    pub(crate) fn is_some(self) -> bool {
        self.bits != 0
    }
    /// The single category bit (number, letter, ...), whitespace excluded.
    fn category(self) -> u16 {
        self.bits & CATEGORIES
    }
}

/// Precomputed flags for ASCII so the hot loops skip the binary search.
pub(crate) struct FlagTable {
    ascii: [Flags; 128],
}

impl FlagTable {
    pub(crate) fn new() -> FlagTable {
        let mut ascii = [Flags::default(); 128];
        for (i, slot) in ascii.iter_mut().enumerate() {
            // i < 128, so the conversion cannot fail; fall back to NUL anyway.
            *slot = Flags::of(char::from_u32(i as u32).unwrap_or('\0'));
        }
        FlagTable { ascii }
    }
    #[inline]
    pub(crate) fn get(&self, c: char) -> Flags {
        match self.ascii.get(c as usize) {
            Some(&f) => f,
            None => Flags::of(c),
        }
    }
}

/// The character llama.cpp substitutes for `c` in its "collapsed" text, on
/// which it runs regexes that use `\p{..}` classes with std::regex: ASCII stays,
/// other code points become one representative per category.
pub(crate) fn collapse(c: char, flags: Flags) -> char {
    if c.is_ascii() {
        return c;
    }
    if flags.is_whitespace() {
        return '\u{0B}';
    }
    match flags.category() {
        NUMBER => COLLAPSED_NUMBER,
        LETTER => COLLAPSED_LETTER,
        PUNCTUATION => COLLAPSED_PUNCTUATION,
        MARK => COLLAPSED_MARK,
        SYMBOL => COLLAPSED_SYMBOL,
        _ => '\u{D0}',
    }
}

pub(crate) const COLLAPSED_NUMBER: char = '\u{D1}';
pub(crate) const COLLAPSED_LETTER: char = '\u{D2}';
pub(crate) const COLLAPSED_PUNCTUATION: char = '\u{D3}';
pub(crate) const COLLAPSED_MARK: char = '\u{D4}';
pub(crate) const COLLAPSED_SYMBOL: char = '\u{D5}';

/// GPT-2's byte-to-unicode map: printable Latin-1 bytes map to themselves, the
/// other 68 bytes to U+0100.. in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let cp = if printable {
            b as u32
        } else {
            let cp = next;
            next += 1;
            cp
        };
        *slot = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_match_llama_cpp_examples() {
        assert!(Flags::of('a').is_letter());
        assert!(Flags::of('7').is_number());
        assert!(Flags::of('²').is_number()); // U+00B2 is No
        assert!(Flags::of('\u{3000}').is_whitespace());
        assert!(!Flags::of('\u{200B}').is_whitespace()); // ZWSP is Cf, not White_Space
        assert!(Flags::of('€').is_some() && !Flags::of('€').is_letter());
        // U+1C89 was assigned in Unicode 16; llama.cpp's 15.1 table calls it undefined.
        assert_eq!(Flags::of('\u{1C89}').bits, UNDEFINED);
        assert!(Flags::of('\u{2EBF0}').is_letter()); // CJK ext. I, new in 15.1
    }

    #[test]
    fn gpt2_byte_alphabet() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0xAD], '\u{143}'); // the 68th non-printable byte: U+0100 + 67
    }
}
