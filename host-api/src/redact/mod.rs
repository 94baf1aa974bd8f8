//! Masks secret values out of everything that leaves a run.

/// Values shorter than this many bytes are not masked: masking `"true"` or
/// `"1234"` would shred ordinary text. Storing such a secret prints a warning.
pub const MIN_MASKED_LEN: usize = 6;
