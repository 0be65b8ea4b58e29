//! The framing of `examples/framed.rs`: 4-byte big-endian length, then the
//! payload, at most `MAX_FRAME` bytes. Shared with the fuzz target
//! `fuzz/fuzz_targets/framed_decode.rs`, so the fuzzer tests the decoder the
//! example really uses. Included with `#[path = ...] mod framing;`.

use tokio_util::codec::LengthDelimitedCodec;

/// The largest payload a frame may carry; a longer length prefix is an error.
pub const MAX_FRAME: usize = 256 * 1024;

/// The codec both sides of the example use.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}
