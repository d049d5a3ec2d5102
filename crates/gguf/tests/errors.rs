//! Every read error names the file, the offset and the problem.
//!
//! Offsets: magic 0, version 4, tensor count 8, metadata count 16, first
//! metadata entry 24.

mod common;

use common::{assert_mentions, parse_err, small_file, ty, Raw};
use llmos_gguf::{GgufError, GgufFile};

#[test]
fn bad_magic_shows_the_bytes() {
    let msg = parse_err(Raw::default().bytes(b"GGML").u32(3).u64(0).u64(0).0);
    assert_mentions(
        &msg,
        &[
            "<memory>",
            "bad magic",
            "offset 0",
            "47 47 4d 4c",
            "\"GGML\"",
        ],
    );
}

#[test]
fn version_1_is_unsupported() {
    let msg = parse_err(Raw::header(1, 0, 0).0);
    assert_mentions(
        &msg,
        &["<memory>", "unsupported GGUF version 1", "offset 4"],
    );
}

#[test]
fn future_version_is_unsupported() {
    let msg = parse_err(Raw::header(4, 0, 0).0);
    assert_mentions(&msg, &["unsupported GGUF version 4", "offset 4"]);
}

#[test]
fn big_endian_file_is_named_as_such() {
    // A big-endian v3 writer stores 00 00 00 03.
    let bytes = Raw::default().bytes(b"GGUF").bytes(&[0, 0, 0, 3]).0;
    let msg = parse_err(bytes);
    assert_mentions(
        &msg,
        &["big-endian GGUF is not supported", "offset 4", "0x03000000"],
    );
}

#[test]
fn empty_input_is_a_clean_error() {
    let msg = parse_err(Vec::new());
    assert_mentions(&msg, &["<memory>", "empty", "offset 0"]);
}

#[test]
fn empty_file_on_disk_is_a_clean_error() {
    let dir = std::env::temp_dir().join(format!("llmos-gguf-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let path = dir.join("empty.gguf");
    std::fs::write(&path, b"").ok();
    let err = GgufFile::open(&path).err().map(|e| e.to_string());
    std::fs::remove_dir_all(&dir).ok();
    let msg = err.unwrap_or_default();
    assert_mentions(&msg, &["empty.gguf", "empty (0 bytes)"]);
}

#[test]
fn missing_file_names_the_path() {
    let err = GgufFile::open("/nonexistent/dir/model.gguf");
    assert!(matches!(err, Err(GgufError::Open { .. })), "{err:?}");
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert_mentions(&msg, &["/nonexistent/dir/model.gguf", "cannot open"]);
}

#[test]
fn directory_is_not_a_file() {
    let dir = std::env::temp_dir();
    let msg = GgufFile::open(&dir)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_mentions(&msg, &[&dir.display().to_string(), "not a regular file"]);
}

#[test]
fn truncated_header_says_what_was_being_read() {
    let msg = parse_err(Raw::header(3, 0, 0).0[..12].to_vec());
    assert_mentions(
        &msg,
        &[
            "truncated",
            "offset 8",
            "tensor count",
            "need 8 bytes, only 4 remain",
        ],
    );
}

#[test]
fn truncated_string_names_the_key_being_read() {
    // Entry 0's key claims 100 bytes, only 20 follow.
    let bytes = Raw::header(3, 0, 1).u64(100).zeros(20).0;
    let msg = parse_err(bytes);
    assert_mentions(
        &msg,
        &[
            "truncated",
            "offset 32",
            "metadata key",
            "metadata entry #0",
            "need 100",
        ],
    );
}

#[test]
fn truncated_value_names_the_key() {
    let bytes = Raw::header(3, 0, 1)
        .string(b"k")
        .u32(ty::U32)
        .bytes(&[1, 2])
        .0;
    let msg = parse_err(bytes);
    assert_mentions(&msg, &["truncated", "offset 37", "u32 value", "\"k\""]);
}

#[test]
fn every_prefix_of_a_valid_file_is_an_error() {
    let full = small_file();
    let data_end = match GgufFile::from_bytes(full.clone()) {
        Ok(f) => f
            .tensors()
            .iter()
            .map(|t| f.data_offset() + t.offset + t.n_bytes)
            .max(),
        Err(e) => panic!("small file: {e}"),
    };
    let data_end = data_end.unwrap_or(0) as usize;
    assert!(
        data_end < full.len(),
        "the writer pads after the last tensor"
    );
    for cut in 0..full.len() {
        let Err(e) = GgufFile::from_bytes(full[..cut].to_vec()) else {
            // Cutting pure trailing padding leaves a valid file.
            assert!(cut >= data_end, "prefix of {cut} bytes parsed");
            continue;
        };
        let msg = e.to_string();
        assert!(
            msg.contains("truncated") || msg.contains("out of bounds") || msg.contains("empty"),
            "prefix {cut}: {msg}"
        );
    }
}

#[test]
fn huge_tensor_count_fails_before_allocating() {
    let msg = parse_err(Raw::header(3, 1 << 60, 0).0);
    assert_mentions(
        &msg,
        &["tensor count 1152921504606846976", "offset 8", "too large"],
    );
}

#[test]
fn huge_metadata_count_fails_before_allocating() {
    let msg = parse_err(Raw::header(3, 0, 1 << 60).zeros(64).0);
    assert_mentions(
        &msg,
        &[
            "metadata key/value count 1152921504606846976",
            "offset 16",
            "too large",
        ],
    );
}

#[test]
fn huge_array_length_fails_before_allocating() {
    for elem in [ty::U8, ty::STRING, ty::ARRAY, ty::BOOL] {
        let bytes = Raw::header(3, 0, 1)
            .string(b"arr")
            .u32(ty::ARRAY)
            .u32(elem)
            .u64(1 << 60)
            .zeros(16)
            .0;
        let msg = parse_err(bytes);
        // Entry at 24: key 8+3, type 4, element type 4, count at 43.
        assert_mentions(
            &msg,
            &[
                "array element count 1152921504606846976",
                "offset 43",
                "\"arr\"",
            ],
        );
    }
}

#[test]
fn count_times_size_overflow_is_count_too_large() {
    // 2^62 u64 elements is 2^65 bytes: the multiplication itself overflows.
    let bytes = Raw::header(3, 0, 1)
        .string(b"a")
        .u32(ty::ARRAY)
        .u32(10)
        .u64(1 << 62)
        .0;
    let msg = parse_err(bytes);
    assert_mentions(&msg, &["too large", "offset 41"]);
}

#[test]
fn unknown_tensor_type_names_tensor_and_id() {
    let bytes = Raw::header(3, 1, 0)
        .tensor("blk.3.attn_q.weight", &[32], 42, 0)
        .pad_to(32)
        .zeros(32)
        .0;
    let msg = parse_err(bytes);
    // Info at 24: name 8+19, n_dims 4, one dim 8, type at 63.
    assert_mentions(
        &msg,
        &[
            "\"blk.3.attn_q.weight\"",
            "type id 42",
            "offset 63",
            "not a known GGML type",
        ],
    );
}

#[test]
fn removed_ggml_type_4_is_unknown() {
    let bytes = Raw::header(3, 1, 0)
        .tensor("t", &[32], 4, 0)
        .pad_to(32)
        .zeros(32)
        .0;
    assert_mentions(&parse_err(bytes), &["type id 4"]);
}

#[test]
fn tensor_out_of_bounds_names_offset_size_and_file_size() {
    // 8 f32 = 32 bytes, but only 16 data bytes follow.
    let r = Raw::header(3, 1, 0).tensor("w", &[8], 0, 0).pad_to(32);
    let data_start = r.len();
    let bytes = r.zeros(16).0;
    let file_size = bytes.len();
    let msg = parse_err(bytes);
    assert_mentions(
        &msg,
        &[
            "\"w\"",
            "out of bounds",
            "offset 24",
            "32 bytes",
            &format!("file offset {data_start}"),
            &format!("file size {file_size}"),
        ],
    );
}

#[test]
fn tensor_offset_far_past_the_end_is_out_of_bounds() {
    let bytes = Raw::header(3, 1, 0)
        .tensor("w", &[8], 0, 1 << 40)
        .pad_to(32)
        .zeros(32)
        .0;
    assert_mentions(&parse_err(bytes), &["\"w\"", "out of bounds"]);
}

#[test]
fn element_count_overflow_is_size_overflow() {
    let bytes = Raw::header(3, 1, 0)
        .tensor("big", &[1 << 62, 1 << 62], 0, 0)
        .pad_to(32)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["size overflow", "offset 24", "\"big\""],
    );
}

#[test]
fn byte_size_overflow_is_size_overflow() {
    // 2^62 f32 elements fit u64 as a count but not as bytes.
    let bytes = Raw::header(3, 1, 0)
        .tensor("big", &[1 << 62], 0, 0)
        .pad_to(32)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["size overflow", "offset 24", "\"big\""],
    );
}

#[test]
fn tensor_offset_overflow_is_size_overflow() {
    let offset = u64::MAX - 31; // aligned to 32
    let bytes = Raw::header(3, 1, 0)
        .tensor("w", &[8], 0, offset)
        .pad_to(32)
        .0;
    assert_mentions(&parse_err(bytes), &["size overflow", "\"w\""]);
}

#[test]
fn dim_above_i64_max_is_rejected() {
    let bytes = Raw::header(3, 1, 0)
        .tensor("w", &[1 << 63], 24, 0)
        .pad_to(32)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["\"w\"", "exceeds i64::MAX", "offset 24"],
    );
}

#[test]
fn row_not_whole_blocks_is_rejected() {
    // q4_K blocks are 256 wide.
    let bytes = Raw::header(3, 1, 0)
        .tensor("w", &[100, 2], 12, 0)
        .pad_to(32)
        .zeros(1024)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["\"w\"", "q4_K", "row length 100", "block size 256"],
    );
}

#[test]
fn invalid_utf8_in_key_gives_its_offset() {
    let bytes = Raw::header(3, 0, 1)
        .string(b"ab\xffc")
        .u32(ty::U32)
        .u32(1)
        .0;
    let msg = parse_err(bytes);
    // Key bytes start at 32; the bad byte is the third.
    assert_mentions(&msg, &["invalid UTF-8", "offset 34", "metadata key"]);
}

#[test]
fn invalid_utf8_in_string_array_gives_its_offset() {
    let bytes = Raw::header(3, 0, 1)
        .string(b"tok")
        .u32(ty::ARRAY)
        .u32(ty::STRING)
        .u64(2)
        .string(b"ok")
        .string(b"\xc3")
        .0;
    // Entry 24; key 8+3 to 35; type to 39; elem type to 43; count to 51;
    // "ok" 8+2 to 61; second length to 69: the bad byte is at 69.
    assert_mentions(
        &parse_err(bytes),
        &["invalid UTF-8", "offset 69", "\"tok\""],
    );
}

#[test]
fn invalid_utf8_in_tensor_name() {
    let bytes = Raw::header(3, 1, 0)
        .string(b"\x80")
        .u32(1)
        .u64(1)
        .u32(0)
        .u64(0)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["invalid UTF-8", "offset 32", "tensor name"],
    );
}

#[test]
fn alignment_must_be_a_power_of_two() {
    for bad in [0u32, 3, 48] {
        let bytes = Raw::header(3, 0, 1).kv_u32("general.alignment", bad).0;
        let msg = parse_err(bytes);
        assert_mentions(
            &msg,
            &[
                "bad alignment",
                "offset 24",
                &format!("u32 {bad}"),
                "power of two",
            ],
        );
    }
}

#[test]
fn alignment_of_wrong_type_is_rejected() {
    let bytes = Raw::header(3, 0, 1)
        .string(b"general.alignment")
        .u32(ty::STRING)
        .string(b"32")
        .0;
    assert_mentions(&parse_err(bytes), &["bad alignment", "string \"32\""]);
}

#[test]
fn too_many_dims_names_the_tensor() {
    let bytes = Raw::header(3, 1, 0).tensor("w", &[1, 1, 1, 1, 1], 0, 0).0;
    // Info at 24: name 8+1, n_dims at 33.
    assert_mentions(
        &parse_err(bytes),
        &["\"w\"", "5 dims", "at most 4", "offset 33"],
    );
}

#[test]
fn duplicate_metadata_key_is_an_error() {
    let bytes = Raw::header(3, 0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2).0;
    // Second entry at 24 + (8+3+4+4).
    assert_mentions(
        &parse_err(bytes),
        &["duplicate metadata key \"a.b\"", "offset 43"],
    );
}

#[test]
fn duplicate_tensor_name_is_an_error() {
    let bytes = Raw::header(3, 2, 0)
        .tensor("w", &[8], 0, 0)
        .tensor("w", &[8], 0, 32)
        .pad_to(32)
        .zeros(64)
        .0;
    // Second info at 24 + (8+1+4+8+4+8).
    assert_mentions(
        &parse_err(bytes),
        &["duplicate tensor name \"w\"", "offset 57"],
    );
}

#[test]
fn unknown_value_type_is_an_error() {
    let bytes = Raw::header(3, 0, 1).string(b"k").u32(13).u32(0).0;
    assert_mentions(
        &parse_err(bytes),
        &["unknown metadata value type 13", "offset 33", "\"k\""],
    );
}

#[test]
fn unknown_array_element_type_is_an_error() {
    let bytes = Raw::header(3, 0, 1)
        .string(b"k")
        .u32(ty::ARRAY)
        .u32(99)
        .u64(0)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["unknown metadata value type 99", "offset 37"],
    );
}

#[test]
fn bool_must_be_0_or_1() {
    let bytes = Raw::header(3, 0, 1).string(b"k").u32(ty::BOOL).u8(2).0;
    assert_mentions(&parse_err(bytes), &["bool value byte 2", "offset 37"]);
    let bytes = Raw::header(3, 0, 1)
        .string(b"k")
        .u32(ty::ARRAY)
        .u32(ty::BOOL)
        .u64(3)
        .bytes(&[0, 1, 7])
        .0;
    assert_mentions(&parse_err(bytes), &["bool value byte 7", "offset 51"]);
}

#[test]
fn deep_array_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let mut r = Raw::header(3, 0, 1).string(b"k").u32(ty::ARRAY);
    for _ in 0..depth {
        r = r.u32(ty::ARRAY).u64(1);
    }
    let msg = parse_err(r.u32(ty::U8).u64(0).0);
    assert_mentions(&msg, &["nested deeper than 16", "\"k\""]);
}

#[test]
fn misaligned_tensor_offset_is_an_error() {
    let bytes = Raw::header(3, 1, 0)
        .tensor("w", &[1], 0, 4)
        .pad_to(32)
        .zeros(64)
        .0;
    assert_mentions(
        &parse_err(bytes),
        &["\"w\"", "data offset 4", "alignment 32", "offset 24"],
    );
}

#[test]
fn file_errors_name_the_path() {
    let dir = std::env::temp_dir().join(format!("llmos-gguf-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let path = dir.join("v1.gguf");
    std::fs::write(&path, Raw::header(1, 0, 0).0).ok();
    let msg = GgufFile::open(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    assert_mentions(
        &msg,
        &[&path.display().to_string(), "unsupported GGUF version 1"],
    );
}
