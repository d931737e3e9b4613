//! Loading block I/O traces in the `.lis` format of the ARC paper.
//!
//! The traces published with N. Megiddo and D. S. Modha, "ARC: A Self-Tuning,
//! Low Overhead Replacement Cache" (USENIX FAST '03) are plain text, one
//! request per line:
//!
//! ```text
//! START_BLOCK BLOCK_COUNT IGNORED REQUEST_ID
//! ```
//!
//! All four fields are unsigned decimal integers separated by whitespace. A
//! request touches the `BLOCK_COUNT` pages `START_BLOCK`,
//! `START_BLOCK + 1`, …, `START_BLOCK + BLOCK_COUNT - 1`, in that order, and
//! every touched page is one key access. The loaders here return that expanded
//! sequence of page numbers, ready to be replayed against a cache or a
//! [reference model](crate::model).
//!
//! The repository ships the OLTP trace from that paper, zstd-compressed, at
//! `traces/OLTP.lis.zst`; [`load_oltp`] reads it (see `traces/README.md` for
//! its provenance, required citation and reference hit ratios).
//!
//! Parsing is strict, because a silently mis-read trace produces plausible but
//! wrong hit ratios: a line with the wrong number of fields, a non-numeric
//! field, a zero or implausibly large block count, or a page range that
//! overflows `u64` is an error naming the line. Lines that are empty or hold
//! only whitespace are skipped, and `\r\n` line endings are accepted.

use std::error::Error;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// The largest `BLOCK_COUNT` accepted on one line.
///
/// Real requests span at most a few thousand blocks; a larger count almost
/// certainly means a corrupt line, and honouring it could exhaust memory while
/// expanding the request.
pub const MAX_BLOCK_COUNT: u64 = 1 << 20;

/// The number of whitespace-separated fields on a `.lis` line.
const FIELDS_PER_LINE: usize = 4;

/// Names of the fields, for error messages.
const FIELD_NAMES: [&str; FIELDS_PER_LINE] =
    ["START_BLOCK", "BLOCK_COUNT", "IGNORED", "REQUEST_ID"];

/// At most this many bytes of an offending field are quoted in an error.
const MAX_QUOTED_FIELD: usize = 40;

/// An error while loading a trace.
#[derive(Debug)]
#[non_exhaustive]
pub enum TraceError {
    /// The trace file could not be opened.
    Open {
        /// The file that could not be opened.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading failed (an I/O error of the underlying reader).
    Read {
        /// The 1-based number of the line being read when the error occurred.
        line: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// The input is not valid zstd data (corrupt, truncated, or failing its
    /// checksum).
    Decompress(DecompressError),
    /// A line does not follow the `.lis` format.
    Malformed {
        /// The 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: LineError,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, .. } => write!(f, "cannot open trace file {}", path.display()),
            Self::Read { line, .. } => write!(f, "failed to read trace at line {line}"),
            Self::Decompress(_) => f.write_str("failed to decompress trace"),
            Self::Malformed { line, reason } => write!(f, "malformed trace line {line}: {reason}"),
        }
    }
}

impl Error for TraceError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Open { source, .. } | Self::Read { source, .. } => Some(source),
            Self::Decompress(source) => Some(source),
            Self::Malformed { reason, .. } => Some(reason),
        }
    }
}

/// What is wrong with a malformed `.lis` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line does not have exactly four fields.
    FieldCount {
        /// How many whitespace-separated fields were found.
        found: usize,
    },
    /// A field is not an unsigned decimal integer that fits in `u64`.
    InvalidNumber {
        /// The field's name, e.g. `"BLOCK_COUNT"`.
        field: &'static str,
        /// The offending text (truncated if long; invalid UTF-8 replaced).
        text: String,
    },
    /// `BLOCK_COUNT` is zero: the request would touch no page.
    ZeroBlockCount,
    /// `BLOCK_COUNT` exceeds [`MAX_BLOCK_COUNT`].
    BlockCountTooLarge {
        /// The count found on the line.
        count: u64,
    },
    /// `START_BLOCK + BLOCK_COUNT` does not fit in `u64`.
    BlockRangeOverflow {
        /// The first block.
        start: u64,
        /// The number of blocks.
        count: u64,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldCount { found } => write!(
                f,
                "expected {FIELDS_PER_LINE} fields (START_BLOCK BLOCK_COUNT IGNORED REQUEST_ID), found {found}"
            ),
            Self::InvalidNumber { field, text } => {
                write!(f, "{field} is not an unsigned integer: {text:?}")
            }
            Self::ZeroBlockCount => f.write_str("BLOCK_COUNT is 0"),
            Self::BlockCountTooLarge { count } => {
                write!(
                    f,
                    "BLOCK_COUNT {count} exceeds the limit of {MAX_BLOCK_COUNT}"
                )
            }
            Self::BlockRangeOverflow { start, count } => {
                write!(f, "blocks {start} + {count} overflow a 64-bit block number")
            }
        }
    }
}

impl Error for LineError {}

/// A zstd decompression failure; see [`TraceError::Decompress`].
#[derive(Debug)]
pub struct DecompressError {
    kind: DecompressErrorKind,
}

#[derive(Debug)]
enum DecompressErrorKind {
    /// The decoder rejected the data.
    Frame(FrameDecoderError),
    /// A frame decoded, but its content checksum does not match.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The input ended inside a skippable frame.
    TruncatedSkippableFrame,
    /// The input is empty.
    Empty,
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DecompressErrorKind::Frame(e) => write!(f, "invalid zstd data: {e}"),
            DecompressErrorKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "zstd content checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the data is corrupt"
            ),
            DecompressErrorKind::TruncatedSkippableFrame => {
                f.write_str("zstd data ends inside a skippable frame")
            }
            DecompressErrorKind::Empty => f.write_str("zstd input is empty"),
        }
    }
}

impl Error for DecompressError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            DecompressErrorKind::Frame(e) => Some(e),
            _ => None,
        }
    }
}

impl DecompressError {
    /// Wraps the error in an `io::Error`, so that it can travel through
    /// `Read`; [`load_lis`] unwraps it again into [`TraceError::Decompress`].
    fn into_io(kind: DecompressErrorKind) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, Self { kind })
    }
}

/// The path of the OLTP trace shipped with the repository,
/// `traces/OLTP.lis.zst` at the workspace root.
#[must_use]
pub fn oltp_trace_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("traces")
        .join("OLTP.lis.zst")
}

/// Loads the OLTP trace of the ARC paper: 914,145 single-page requests over
/// 186,880 distinct pages.
///
/// # Errors
///
/// See [`load_lis_file`].
pub fn load_oltp() -> Result<Vec<u64>, TraceError> {
    load_lis_file(oltp_trace_path())
}

/// Loads a `.lis` trace from a file, decompressing it first if its name ends
/// in `.zst`.
///
/// # Errors
///
/// [`TraceError::Open`] if the file cannot be opened, otherwise as
/// [`load_lis`] and [`load_lis_zst`].
pub fn load_lis_file(path: impl AsRef<Path>) -> Result<Vec<u64>, TraceError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| TraceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if path.extension().is_some_and(|ext| ext == "zst") {
        load_lis_zst(file)
    } else {
        load_lis(file)
    }
}

/// Loads a zstd-compressed `.lis` trace.
///
/// Concatenated frames are decoded in sequence and skippable frames are
/// skipped, as the `zstd` command-line tool does. Frames that carry a content
/// checksum are verified.
///
/// # Errors
///
/// [`TraceError::Decompress`] for invalid, truncated or corrupt zstd data,
/// otherwise as [`load_lis`].
pub fn load_lis_zst<R: Read>(reader: R) -> Result<Vec<u64>, TraceError> {
    load_lis(ZstdReader::new(reader))
}

/// Loads an uncompressed `.lis` trace, returning the expanded page accesses.
///
/// See the [module documentation](self) for the format. The reader is
/// buffered internally.
///
/// # Errors
///
/// [`TraceError::Malformed`] for the first line that does not follow the
/// format, [`TraceError::Read`] if the reader fails.
pub fn load_lis<R: Read>(reader: R) -> Result<Vec<u64>, TraceError> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut accesses = Vec::new();
    let mut buf = Vec::with_capacity(64);
    let mut line_no: u64 = 0;
    loop {
        line_no += 1;
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| read_error(source, line_no))?;
        if read == 0 {
            return Ok(accesses);
        }
        if let Some((start, count)) = parse_line(&buf).map_err(|reason| TraceError::Malformed {
            line: line_no,
            reason,
        })? {
            // `parse_line` checked that the range neither overflows nor is
            // unreasonably long.
            accesses.extend(start..start + count);
        }
    }
}

/// Classifies a read error: decompression failures become
/// [`TraceError::Decompress`], everything else [`TraceError::Read`].
fn read_error(source: io::Error, line: u64) -> TraceError {
    match source.downcast::<DecompressError>() {
        Ok(e) => TraceError::Decompress(e),
        Err(source) => TraceError::Read { line, source },
    }
}

/// Parses one line into `(START_BLOCK, BLOCK_COUNT)`, or `None` for a blank
/// line.
fn parse_line(line: &[u8]) -> Result<Option<(u64, u64)>, LineError> {
    let mut values = [0u64; FIELDS_PER_LINE];
    let mut found = 0;
    for field in line
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty())
    {
        if let Some(slot) = values.get_mut(found) {
            *slot = parse_u64(field).ok_or_else(|| LineError::InvalidNumber {
                field: FIELD_NAMES[found],
                text: quote(field),
            })?;
        }
        found += 1;
    }
    if found == 0 {
        return Ok(None);
    }
    if found != FIELDS_PER_LINE {
        return Err(LineError::FieldCount { found });
    }
    let [start, count, _, _] = values;
    if count == 0 {
        return Err(LineError::ZeroBlockCount);
    }
    if count > MAX_BLOCK_COUNT {
        return Err(LineError::BlockCountTooLarge { count });
    }
    if start.checked_add(count).is_none() {
        return Err(LineError::BlockRangeOverflow { start, count });
    }
    Ok(Some((start, count)))
}

/// Parses an unsigned decimal integer made only of ASCII digits.
fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Renders a field for an error message, truncated and lossily decoded.
fn quote(field: &[u8]) -> String {
    let shown = &field[..field.len().min(MAX_QUOTED_FIELD)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if field.len() > MAX_QUOTED_FIELD {
        text.push('…');
    }
    text
}

/// A `Read` adapter that decompresses a sequence of zstd frames.
///
/// `ruzstd`'s own streaming decoder handles a single frame and does not verify
/// checksums; this one handles concatenated and skippable frames and checks
/// each frame's content checksum when present.
struct ZstdReader<R: Read> {
    source: BufReader<R>,
    decoder: FrameDecoder,
    /// Whether a frame has been started and not yet fully read.
    in_frame: bool,
    /// Whether any (data or skippable) frame has been seen.
    seen_frame: bool,
}

impl<R: Read> ZstdReader<R> {
    fn new(source: R) -> Self {
        Self {
            source: BufReader::with_capacity(1 << 16, source),
            decoder: FrameDecoder::new(),
            in_frame: false,
            seen_frame: false,
        }
    }

    /// Reads the next frame header. Returns `false` at the end of the input.
    fn start_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                if self.seen_frame {
                    return Ok(false);
                }
                return Err(DecompressError::into_io(DecompressErrorKind::Empty));
            }
            self.seen_frame = true;
            match self.decoder.init(&mut self.source) {
                Ok(()) => {
                    self.in_frame = true;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let length = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.source).take(length), &mut io::sink())?;
                    if skipped < length {
                        return Err(DecompressError::into_io(
                            DecompressErrorKind::TruncatedSkippableFrame,
                        ));
                    }
                }
                Err(e) => return Err(DecompressError::into_io(DecompressErrorKind::Frame(e))),
            }
        }
    }

    /// Verifies the checksum of the frame that has just been fully read.
    fn finish_frame(&mut self) -> io::Result<()> {
        self.in_frame = false;
        if let (Some(stored), Some(computed)) = (
            self.decoder.get_checksum_from_data(),
            self.decoder.get_calculated_checksum(),
        ) {
            if stored != computed {
                return Err(DecompressError::into_io(
                    DecompressErrorKind::ChecksumMismatch { stored, computed },
                ));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame && !self.start_frame()? {
                return Ok(0);
            }
            // Decode blocks until enough output is available or the frame
            // ends. Each call decodes at least one block, so this terminates.
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let wanted = buf.len() - self.decoder.can_collect();
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(wanted))
                    .map_err(|e| DecompressError::into_io(DecompressErrorKind::Frame(e)))?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // Nothing left to collect and the frame is finished.
            self.finish_frame()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny zstd frame holding "1 1 0 0\n2 2 0 1\n" with a content checksum,
    /// produced by the reference `zstd` tool (`zstd -19 --check`).
    const SMALL_FRAME: &[u8] = &[
        0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68, 0x81, 0x00, 0x00, 0x31, 0x20, 0x31, 0x20, 0x30, 0x20,
        0x30, 0x0a, 0x32, 0x20, 0x32, 0x20, 0x30, 0x20, 0x31, 0x0a, 0xfe, 0x5b, 0x7d, 0xe6,
    ];
    const SMALL_FRAME_PAGES: [u64; 3] = [1, 2, 3];

    fn malformed(input: &str) -> (u64, LineError) {
        match load_lis(input.as_bytes()) {
            Err(TraceError::Malformed { line, reason }) => (line, reason),
            other => panic!("expected a malformed-line error for {input:?}, got {other:?}"),
        }
    }

    #[test]
    fn expands_multi_block_requests() {
        let trace = "10 1 0 0\n20 3 0 1\n10 2 0 2\n";
        assert_eq!(
            load_lis(trace.as_bytes()).expect("valid trace"),
            [10, 20, 21, 22, 10, 11]
        );
    }

    #[test]
    fn tolerates_blank_lines_crlf_and_missing_final_newline() {
        let trace = "\n5 1 0 0\r\n   \n\t6 2 7 1";
        assert_eq!(load_lis(trace.as_bytes()).expect("valid trace"), [5, 6, 7]);
        assert!(load_lis(&b""[..]).expect("empty trace").is_empty());
    }

    #[test]
    fn reports_wrong_field_counts_with_line_numbers() {
        assert_eq!(
            malformed("1 1 0 0\n2 1 0\n"),
            (2, LineError::FieldCount { found: 3 })
        );
        assert_eq!(
            malformed("1 1 0 0 9\n"),
            (1, LineError::FieldCount { found: 5 })
        );
    }

    #[test]
    fn reports_invalid_numbers() {
        let (line, reason) = malformed("1 1 0 0\n\n3 x 0 0\n");
        assert_eq!(line, 3);
        assert_eq!(
            reason,
            LineError::InvalidNumber {
                field: "BLOCK_COUNT",
                text: "x".to_owned()
            }
        );
        assert!(matches!(
            malformed("-1 1 0 0").1,
            LineError::InvalidNumber {
                field: "START_BLOCK",
                ..
            }
        ));
        assert!(matches!(
            malformed("1 1 0 1.5").1,
            LineError::InvalidNumber {
                field: "REQUEST_ID",
                ..
            }
        ));
        // One more than u64::MAX.
        assert!(matches!(
            malformed("18446744073709551616 1 0 0").1,
            LineError::InvalidNumber {
                field: "START_BLOCK",
                ..
            }
        ));
    }

    #[test]
    fn rejects_non_utf8_without_panicking() {
        let err = load_lis(&b"1 1 0 0\n\xff 1 0 0\n"[..]).expect_err("invalid field");
        assert!(
            matches!(err, TraceError::Malformed { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_unreasonable_block_counts() {
        assert_eq!(malformed("1 0 0 0").1, LineError::ZeroBlockCount);
        assert_eq!(
            malformed(&format!("1 {} 0 0", MAX_BLOCK_COUNT + 1)).1,
            LineError::BlockCountTooLarge {
                count: MAX_BLOCK_COUNT + 1
            }
        );
        assert_eq!(
            malformed(&format!("{} 2 0 0", u64::MAX - 1)).1,
            LineError::BlockRangeOverflow {
                start: u64::MAX - 1,
                count: 2
            }
        );
        // The last representable block is fine.
        let last = format!("{} 1 0 0", u64::MAX - 1);
        assert_eq!(load_lis(last.as_bytes()).expect("valid"), [u64::MAX - 1]);
    }

    #[test]
    fn error_messages_name_the_line() {
        let err = load_lis(&b"1 1 0 0\n1 1\n"[..]).expect_err("short line");
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
        let cause = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(cause.contains("found 2"), "{cause}");
    }

    #[test]
    fn read_errors_carry_the_line_number() {
        struct FailAfter<'a>(&'a [u8]);
        impl Read for FailAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = self.0.read(buf)?;
                Ok(n)
            }
        }
        let err = load_lis(FailAfter(b"1 1 0 0\n2 1 0 0\n")).expect_err("reader fails");
        assert!(matches!(err, TraceError::Read { line: 3, .. }), "{err:?}");
    }

    #[test]
    fn decompresses_a_checksummed_frame() {
        let pages = load_lis_zst(SMALL_FRAME).expect("valid frame");
        assert_eq!(pages, SMALL_FRAME_PAGES);
    }

    #[test]
    fn decompresses_concatenated_and_skippable_frames() {
        let mut input = Vec::new();
        input.extend_from_slice(SMALL_FRAME);
        // A skippable frame: magic 0x184D2A5?, little-endian length, payload.
        input.extend_from_slice(&[0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, b'a', b'b', b'c']);
        input.extend_from_slice(SMALL_FRAME);
        let pages = load_lis_zst(input.as_slice()).expect("valid frames");
        assert_eq!(pages, [SMALL_FRAME_PAGES, SMALL_FRAME_PAGES].concat());
    }

    #[test]
    fn detects_corrupt_truncated_and_empty_zstd_input() {
        let mut corrupt = SMALL_FRAME.to_vec();
        // The frame stores its content raw from byte 9 on. Turn the first
        // "1" into "0": still a valid trace, so only the checksum can tell.
        assert_eq!(corrupt[9], b'1');
        corrupt[9] = b'0';
        let err = load_lis_zst(corrupt.as_slice()).expect_err("corrupt data");
        assert!(
            matches!(&err, TraceError::Decompress(e) if e.to_string().contains("checksum")),
            "{err:?}"
        );

        let truncated = &SMALL_FRAME[..SMALL_FRAME.len() - 6];
        let err = load_lis_zst(truncated).expect_err("truncated data");
        assert!(matches!(err, TraceError::Decompress(_)), "{err:?}");

        let err = load_lis_zst(&b"1 1 0 0\n"[..]).expect_err("not zstd");
        assert!(matches!(err, TraceError::Decompress(_)), "{err:?}");

        let err = load_lis_zst(&b""[..]).expect_err("empty input");
        assert!(matches!(err, TraceError::Decompress(_)), "{err:?}");

        let skippable_cut_short = [0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, b'x'];
        let err = load_lis_zst(&skippable_cut_short[..]).expect_err("truncated skippable");
        assert!(matches!(err, TraceError::Decompress(_)), "{err:?}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "miri isolates the file system")]
    fn missing_file_is_reported_with_its_path() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-trace.lis.zst");
        let err = load_lis_file(&path).expect_err("missing file");
        assert!(
            matches!(&err, TraceError::Open { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("no-such-trace.lis.zst"));
    }

    #[test]
    fn oltp_path_points_at_the_shipped_trace() {
        let path = oltp_trace_path();
        assert!(path.ends_with("traces/OLTP.lis.zst"), "{}", path.display());
    }
}
