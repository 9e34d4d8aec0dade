//! The CRI container log format: each line of a container's log file is
//! `<RFC 3339 nano timestamp> <stream> <tags> <content>`, where the tags start with `P`
//! (partial: the line continues in the next entry) or `F` (full). This module parses lines
//! and joins partial entries back into whole lines, per stream. Like the kubelet's log
//! reader, the readers ([`parse_log`], [`LogJoiner::push_line`]) also take Docker's
//! json-file lines (`{"log":"...\n","stream":"stdout","time":"..."}`), which cri-dockerd
//! leaves in place of CRI-format logs.
//!
//! ```
//! use anycri_core::logs::{LogStream, parse_log};
//! let text = "2024-05-01T10:00:00.000000001Z stdout P hello, \n\
//!             2024-05-01T10:00:00.000000002Z stderr F oops\n\
//!             2024-05-01T10:00:00.000000003Z stdout F world\n";
//! let lines = parse_log(text).unwrap();
//! assert_eq!(lines.len(), 2);
//! assert_eq!((lines[0].stream, lines[0].content.as_str()), (LogStream::Stderr, "oops"));
//! assert_eq!((lines[1].stream, lines[1].content.as_str()), (LogStream::Stdout, "hello, world"));
//! ```

use chrono::{DateTime, FixedOffset};

use crate::error::{Error, Result};

/// Which output stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One parsed log entry, borrowing the input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry<'a> {
    /// The timestamp exactly as written (RFC 3339 with nanoseconds).
    pub timestamp: &'a str,
    /// The stream.
    pub stream: LogStream,
    /// True for a partial entry (`P`): the line continues in the next entry of this stream.
    pub partial: bool,
    /// The content, without the trailing newline.
    pub content: &'a str,
}

impl LogEntry<'_> {
    /// The timestamp, parsed.
    pub fn time(&self) -> Result<DateTime<FixedOffset>> {
        DateTime::parse_from_rfc3339(self.timestamp).map_err(|e| {
            Error::with_source(
                crate::ErrorKind::InvalidArgument,
                format!("bad CRI log timestamp {:?}", self.timestamp),
                e,
            )
        })
    }
}

/// Parse one line of a CRI log file (with or without its trailing newline).
///
/// ```
/// use anycri_core::logs::{LogStream, parse_line};
/// let entry = parse_line("2024-05-01T10:00:00.123456789Z stdout F listening on :8080\n").unwrap();
/// assert_eq!(entry.stream, LogStream::Stdout);
/// assert!(!entry.partial);
/// assert_eq!(entry.content, "listening on :8080");
/// assert_eq!(entry.time().unwrap().timestamp_subsec_nanos(), 123_456_789);
/// assert!(parse_line("not a log line").is_err());
/// ```
pub fn parse_line(line: &str) -> Result<LogEntry<'_>> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let bad =
        |why: &str| Error::invalid_argument(format!("malformed CRI log line ({why}): {line:?}"));
    let (timestamp, rest) = line.split_once(' ').ok_or_else(|| bad("no stream"))?;
    let (stream, rest) = rest.split_once(' ').ok_or_else(|| bad("no tags"))?;
    let stream = match stream {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        _ => return Err(bad("unknown stream")),
    };
    // An entry with empty content may end right after the tags.
    let (tags, content) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = match tags.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Err(bad("unknown tag")),
    };
    if timestamp.is_empty() {
        return Err(bad("empty timestamp"));
    }
    Ok(LogEntry {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// One line of a Docker json-file log, decoded (its content is unescaped, so owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLogEntry {
    /// The `time` field (RFC 3339 with nanoseconds).
    pub timestamp: String,
    /// The `stream` field.
    pub stream: LogStream,
    /// The `log` field, trailing newline included when the line was complete.
    pub log: String,
}

impl JsonLogEntry {
    /// Parse one json-file line.
    ///
    /// ```
    /// use anycri_core::logs::{JsonLogEntry, LogStream};
    /// let line = r#"{"log":"ready\n","stream":"stderr","time":"2024-05-01T10:00:00.5Z"}"#;
    /// let entry = JsonLogEntry::parse(line).unwrap();
    /// assert_eq!(entry.stream, LogStream::Stderr);
    /// let cri = entry.entry(); // as a CRI entry: complete, the newline dropped
    /// assert_eq!((cri.content, cri.partial), ("ready", false));
    /// ```
    pub fn parse(line: &str) -> Result<Self> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let bad = |why: &str| {
            Error::invalid_argument(format!(
                "malformed Docker json-file log line ({why}): {line:?}"
            ))
        };
        let value: serde_json::Value = serde_json::from_str(line).map_err(|_| bad("not JSON"))?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str());
        let stream = match field("stream") {
            Some("stdout") => LogStream::Stdout,
            Some("stderr") => LogStream::Stderr,
            _ => return Err(bad("unknown stream")),
        };
        let timestamp = field("time")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("no time"))?;
        let log = field("log").ok_or_else(|| bad("no log"))?;
        Ok(JsonLogEntry {
            timestamp: timestamp.to_owned(),
            stream,
            log: log.to_owned(),
        })
    }

    /// As a CRI log entry: a `log` without its trailing newline is partial (json-file splits
    /// long lines so).
    pub fn entry(&self) -> LogEntry<'_> {
        let (content, partial) = match self.log.strip_suffix('\n') {
            Some(content) => (content, false),
            None => (self.log.as_str(), true),
        };
        LogEntry {
            timestamp: &self.timestamp,
            stream: self.stream,
            partial,
            content,
        }
    }
}

/// A whole log line: partial entries joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The timestamp of the line's first entry.
    pub timestamp: String,
    /// The stream.
    pub stream: LogStream,
    /// The line's content, without the newline.
    pub content: String,
}

/// Joins partial entries into whole lines, keeping stdout and stderr apart.
///
/// For reading a log as it is written, one raw line at a time (CRI format or Docker
/// json-file):
///
/// ```
/// use anycri_core::logs::LogJoiner;
/// let mut joiner = LogJoiner::new();
/// assert_eq!(joiner.push_line("2024-05-01T10:00:00Z stdout P a very ").unwrap(), None);
/// let line = joiner.push_line("2024-05-01T10:00:01Z stdout F long line").unwrap().unwrap();
/// assert_eq!(line.content, "a very long line");
/// assert_eq!(line.timestamp, "2024-05-01T10:00:00Z"); // the first entry's
/// // A log that ends mid-line: what is pending.
/// joiner.push_line(r#"{"log":"no newline","stream":"stdout","time":"2024-05-01T10:00:02Z"}"#).unwrap();
/// assert_eq!(joiner.finish().next().unwrap().content, "no newline");
/// ```
#[derive(Debug, Default)]
pub struct LogJoiner {
    pending: [Option<LogLine>; 2],
}

impl LogJoiner {
    /// A joiner with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one entry; returns the whole line it completes, if any.
    pub fn push(&mut self, entry: LogEntry<'_>) -> Option<LogLine> {
        let slot = &mut self.pending[entry.stream as usize];
        match slot {
            Some(line) => line.content.push_str(entry.content),
            None => {
                *slot = Some(LogLine {
                    timestamp: entry.timestamp.to_owned(),
                    stream: entry.stream,
                    content: entry.content.to_owned(),
                })
            }
        }
        if entry.partial { None } else { slot.take() }
    }

    /// Feed one raw line of a log file, CRI format or Docker json-file; returns the whole
    /// line it completes, if any.
    pub fn push_line(&mut self, raw: &str) -> Result<Option<LogLine>> {
        if raw.starts_with('{') {
            let json = JsonLogEntry::parse(raw)?;
            Ok(self.push(json.entry()))
        } else {
            Ok(self.push(parse_line(raw)?))
        }
    }

    /// Lines still waiting for their end (a log that stopped mid-line), stdout first.
    pub fn finish(self) -> impl Iterator<Item = LogLine> {
        self.pending.into_iter().flatten()
    }
}

/// Parse a whole log text (CRI format, or Docker json-file lines) into lines, partial entries
/// joined. Malformed lines are errors.
pub fn parse_log(text: &str) -> Result<Vec<LogLine>> {
    let mut joiner = LogJoiner::new();
    let mut lines = Vec::new();
    // Split on `\n` only: a `\r` before it is content (TTY output), as the runtimes write it.
    for raw in text.split_terminator('\n').filter(|l| !l.is_empty()) {
        if let Some(line) = joiner.push_line(raw)? {
            lines.push(line);
        }
    }
    lines.extend(joiner.finish());
    Ok(lines)
}

/// Format one entry in the CRI log format (with its newline), for writers of log files.
///
/// ```
/// use anycri_core::logs::{LogStream, format_entry, parse_line};
/// let at = chrono::DateTime::from_timestamp(1_714_557_600, 42).unwrap();
/// let line = format_entry(&at, LogStream::Stdout, false, "hello");
/// assert_eq!(line, "2024-05-01T10:00:00.000000042Z stdout F hello\n");
/// assert_eq!(parse_line(&line).unwrap().content, "hello");
/// ```
pub fn format_entry(
    timestamp: &DateTime<chrono::Utc>,
    stream: LogStream,
    partial: bool,
    content: &str,
) -> String {
    let mut out = Vec::with_capacity(content.len() + 48);
    push_entry(
        &mut out,
        &format_timestamp(timestamp),
        stream,
        partial,
        content.as_bytes(),
    );
    // Only ASCII was added around `content`, which is UTF-8 already.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Append a container's output, as one write of it came, to `out` in the CRI log format: one
/// `F` entry per `\n`-ended line and a `P` entry for a rest without `\n`, all stamped
/// `timestamp`. Empty output gives nothing; `\r` is content; the bytes need not be UTF-8
/// (the kubelet reads log files as bytes).
///
/// ```
/// use anycri_core::logs::{LogStream, append_output, parse_log};
/// let at = chrono::DateTime::from_timestamp(1_714_557_600, 7).unwrap();
/// let mut file = Vec::new();
/// append_output(&mut file, &at, LogStream::Stderr, b"one\ntw");
/// append_output(&mut file, &at, LogStream::Stderr, b"o\n");
/// let text = String::from_utf8(file).unwrap();
/// assert_eq!(
///     text,
///     "2024-05-01T10:00:00.000000007Z stderr F one\n\
///      2024-05-01T10:00:00.000000007Z stderr P tw\n\
///      2024-05-01T10:00:00.000000007Z stderr F o\n"
/// );
/// let lines = parse_log(&text).unwrap();
/// assert_eq!(lines.iter().map(|l| l.content.as_str()).collect::<Vec<_>>(), ["one", "two"]);
/// ```
pub fn append_output(
    out: &mut Vec<u8>,
    timestamp: &DateTime<chrono::Utc>,
    stream: LogStream,
    content: &[u8],
) {
    if content.is_empty() {
        return;
    }
    let timestamp = format_timestamp(timestamp);
    let mut rest = content;
    while !rest.is_empty() {
        let (line, partial, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], false, &rest[i + 1..]),
            None => (rest, true, &rest[rest.len()..]),
        };
        push_entry(out, &timestamp, stream, partial, line);
        rest = next;
    }
}

/// The CRI log's timestamp: RFC 3339 in UTC with nanoseconds (`2024-05-01T10:00:00.000000042Z`).
fn format_timestamp(timestamp: &DateTime<chrono::Utc>) -> String {
    timestamp.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `<timestamp> <stream> <P|F> <content>\n`, appended to `out`.
fn push_entry(
    out: &mut Vec<u8>,
    timestamp: &str,
    stream: LogStream,
    partial: bool,
    content: &[u8],
) {
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_lines() {
        let e = parse_line("2016-10-06T00:17:09.669794202Z stdout F hello world\n").unwrap();
        assert_eq!(e.stream, LogStream::Stdout);
        assert!(!e.partial);
        assert_eq!(e.content, "hello world");
        assert_eq!(e.time().unwrap().timestamp_subsec_nanos(), 669_794_202);
        let e = parse_line("2016-10-06T00:17:09.669794202Z stderr P part").unwrap();
        assert_eq!(e.stream, LogStream::Stderr);
        assert!(e.partial);
    }

    #[test]
    fn empty_content_and_extra_tags() {
        let e = parse_line("2016-10-06T00:17:09.669794202Z stdout F").unwrap();
        assert_eq!(e.content, "");
        let e = parse_line("2016-10-06T00:17:09.669794202Z stdout F:x  two spaces").unwrap();
        assert_eq!(e.content, " two spaces");
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in ["", "nostream", "ts stdin F x", "ts stdout X x", "ts stdout"] {
            let err = parse_line(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn reads_docker_json_file_lines() {
        // As cri-dockerd leaves them: Docker's json-file lines, a long line split without its
        // newline, escapes in the content.
        let text = concat!(
            r#"{"log":"hello \"quoted\"\n","stream":"stdout","time":"2024-05-01T10:00:00.000000001Z"}"#,
            "\n",
            r#"{"log":"part one ","stream":"stderr","time":"2024-05-01T10:00:00.000000002Z"}"#,
            "\n",
            r#"{"log":"and two\n","stream":"stderr","time":"2024-05-01T10:00:00.000000003Z"}"#,
            "\n",
        );
        let lines = parse_log(text).unwrap();
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.timestamp.as_str(), l.stream, l.content.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "2024-05-01T10:00:00.000000001Z",
                    LogStream::Stdout,
                    "hello \"quoted\""
                ),
                (
                    "2024-05-01T10:00:00.000000002Z",
                    LogStream::Stderr,
                    "part one and two"
                ),
            ]
        );
        for bad in [
            "{not json",
            r#"{"log":"x\n","stream":"stdin","time":"t"}"#,
            r#"{"log":"x\n","stream":"stdout"}"#,
        ] {
            assert_eq!(
                parse_log(bad).unwrap_err().kind(),
                crate::ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn joins_partials_per_stream() {
        let text = "t1 stdout P hel\nt2 stderr F oops\nt3 stdout P lo \nt4 stdout F world\nt5 stdout P tail";
        let lines = parse_log(text).unwrap();
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.timestamp.as_str(), l.stream, l.content.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("t2", LogStream::Stderr, "oops"),
                ("t1", LogStream::Stdout, "hello world"),
                ("t5", LogStream::Stdout, "tail"),
            ]
        );
    }

    #[test]
    fn format_then_parse() {
        let now = chrono::Utc::now();
        let s = format_entry(&now, LogStream::Stderr, true, "abc");
        let e = parse_line(&s).unwrap();
        assert_eq!(
            (e.stream, e.partial, e.content),
            (LogStream::Stderr, true, "abc")
        );
        assert_eq!(e.time().unwrap(), now);
    }
}
