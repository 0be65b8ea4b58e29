//! The length-delimited decoder of `examples/framed.rs` on arbitrary bytes,
//! fed in arbitrary pieces.
//!
//! Checks: decoding never panics; a frame never exceeds `MAX_FRAME`; and the
//! frames decoded from the input split into pieces (the split points come
//! from the input too) are the frames decoded from the whole input at once
//! — a stream delivers bytes in any chunking, and the frames must not
//! depend on it. Finally, re-encoding the decoded frames gives back exactly
//! the bytes they were decoded from.

#![no_main]

#[path = "../../examples/common/framing.rs"]
mod framing;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

/// Decodes `pieces` one after the other, like reads from a socket. Returns
/// the frames and whether decoding stopped on an error.
fn decode(pieces: &[&[u8]]) -> (Vec<Bytes>, bool) {
    let mut codec = framing::codec();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= framing::MAX_FRAME, "frame over the limit");
                    frames.push(frame.freeze());
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size for the split decode.
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);

    let (whole, whole_err) = decode(&[input]);
    let pieces: Vec<&[u8]> = input.chunks(chunk).collect();
    let (split, split_err) = decode(&pieces);
    assert_eq!(whole, split, "frames depend on how the bytes were split");
    assert_eq!(
        whole_err, split_err,
        "an error depends on how the bytes were split"
    );

    // Re-encoding the frames reproduces the prefix of the input they came from.
    let mut codec = framing::codec();
    let mut out = BytesMut::new();
    for frame in &whole {
        codec
            .encode(frame.clone(), &mut out)
            .expect("a decoded frame re-encodes");
    }
    assert_eq!(
        &out[..],
        &input[..out.len()],
        "re-encoded frames differ from the input"
    );
});
