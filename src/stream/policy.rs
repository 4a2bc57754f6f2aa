//! The read policy's numbers (see the crate docs). They live apart from
//! [`Stream`](super::Stream) so that sources can use them without
//! depending on the stream.

use std::time::Duration;

/// How long one `wait_range` of [`Stream::try_read`](super::Stream::try_read) may block.
pub const WAIT_RANGE_TIMEOUT: Duration = Duration::from_millis(10);

/// How many non-progressing waits one [`Stream::try_read`](super::Stream::try_read) makes before it
/// reports `Pending(NotReady(..))` (≈ 500 ms in total).
pub const MAX_WAIT_SPINS: u32 = 50;

/// How long a seek primes the new position (`wait_range` at the target)
/// before returning.
pub const SEEK_WAIT_TIMEOUT: Duration = Duration::from_millis(500);
