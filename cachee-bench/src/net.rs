//! Minimal clients for redis (RESP) and memcached (text protocol) over a unix socket,
//! with optional pipelining: a batch of requests is written at once, then all replies
//! are read.
//!
//! Keys go over the wire as 16 hexadecimal digits (memcached's text protocol forbids
//! control bytes in keys; redis gets the same keys so the two are comparable).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use crate::contender::Worker;
use crate::ops::SET;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Memcached,
}

pub struct Client {
    kind: Kind,
    pipeline: usize,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    req: Vec<u8>,
    line: Vec<u8>,
}

fn hex_key(key: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((key >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

fn bad(what: &str, line: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{what}: unexpected reply {:?}",
            String::from_utf8_lossy(line)
        ),
    )
}

fn parse_num(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.trim().parse().ok()
}

impl Client {
    pub fn connect(kind: Kind, socket: &str, pipeline: usize) -> io::Result<Client> {
        let stream = UnixStream::connect(socket)?;
        let writer = stream.try_clone()?;
        Ok(Client {
            kind,
            pipeline: pipeline.max(1),
            reader: BufReader::with_capacity(1 << 16, stream),
            writer,
            req: Vec::with_capacity(1 << 16),
            line: Vec::with_capacity(256),
        })
    }

    fn push_get(&mut self, key: u64) {
        let k = hex_key(key);
        match self.kind {
            Kind::Redis => {
                self.req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$16\r\n");
                self.req.extend_from_slice(&k);
                self.req.extend_from_slice(b"\r\n");
            }
            Kind::Memcached => {
                self.req.extend_from_slice(b"get ");
                self.req.extend_from_slice(&k);
                self.req.extend_from_slice(b"\r\n");
            }
        }
    }

    fn push_set(&mut self, key: u64, value: &[u8]) {
        let k = hex_key(key);
        match self.kind {
            Kind::Redis => {
                self.req.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
                self.req.extend_from_slice(&k);
                self.req
                    .extend_from_slice(format!("\r\n${}\r\n", value.len()).as_bytes());
            }
            Kind::Memcached => {
                self.req.extend_from_slice(b"set ");
                self.req.extend_from_slice(&k);
                self.req
                    .extend_from_slice(format!(" 0 0 {}\r\n", value.len()).as_bytes());
            }
        }
        self.req.extend_from_slice(value);
        self.req.extend_from_slice(b"\r\n");
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.write_all(&self.req)?;
        self.req.clear();
        Ok(())
    }

    fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        self.reader.read_until(b'\n', &mut self.line)?;
        if !self.line.ends_with(b"\r\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.line.truncate(self.line.len() - 2);
        Ok(())
    }

    /// Reads `n` bytes of payload plus the trailing CRLF into `out` (as much as fits).
    fn read_payload(&mut self, n: usize, out: &mut [u8]) -> io::Result<()> {
        let mut left = n + 2;
        let mut at = 0;
        while left > 0 {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = buf.len().min(left);
            let copy = take
                .min(out.len().saturating_sub(at))
                .min(n.saturating_sub(at));
            out[at..at + copy].copy_from_slice(&buf[..copy]);
            at += copy;
            self.reader.consume(take);
            left -= take;
        }
        Ok(())
    }

    /// Reads the reply to a get; returns whether it hit.
    fn read_get(&mut self, out: &mut [u8]) -> io::Result<bool> {
        self.read_line()?;
        match self.kind {
            Kind::Redis => {
                if self.line.first() != Some(&b'$') {
                    return Err(bad("GET", &self.line));
                }
                match parse_num(&self.line[1..]) {
                    Some(-1) => Ok(false),
                    Some(n) if n >= 0 => {
                        self.read_payload(n as usize, out)?;
                        Ok(true)
                    }
                    _ => Err(bad("GET", &self.line)),
                }
            }
            Kind::Memcached => {
                if self.line == b"END" {
                    return Ok(false);
                }
                // VALUE <key> <flags> <bytes>
                let n = self
                    .line
                    .starts_with(b"VALUE ")
                    .then(|| self.line.rsplit(|&b| b == b' ').next())
                    .flatten()
                    .and_then(parse_num)
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| bad("get", &self.line))?;
                self.read_payload(n as usize, out)?;
                self.read_line()?;
                if self.line != b"END" {
                    return Err(bad("get", &self.line));
                }
                Ok(true)
            }
        }
    }

    fn read_set(&mut self) -> io::Result<()> {
        self.read_line()?;
        let ok: &[u8] = match self.kind {
            Kind::Redis => b"+OK",
            Kind::Memcached => b"STORED",
        };
        if self.line != ok {
            return Err(bad("set", &self.line));
        }
        Ok(())
    }

    /// The number of entries the server holds.
    pub fn entries(&mut self) -> io::Result<usize> {
        match self.kind {
            Kind::Redis => {
                self.req.extend_from_slice(b"*1\r\n$6\r\nDBSIZE\r\n");
                self.flush()?;
                self.read_line()?;
                if self.line.first() != Some(&b':') {
                    return Err(bad("DBSIZE", &self.line));
                }
                parse_num(&self.line[1..])
                    .map(|n| n as usize)
                    .ok_or_else(|| bad("DBSIZE", &self.line))
            }
            Kind::Memcached => {
                self.req.extend_from_slice(b"stats\r\n");
                self.flush()?;
                let mut items = None;
                loop {
                    self.read_line()?;
                    if self.line == b"END" {
                        break;
                    }
                    if let Some(rest) = self.line.strip_prefix(b"STAT curr_items ") {
                        items = parse_num(rest);
                    }
                }
                items
                    .map(|n| n as usize)
                    .ok_or_else(|| bad("stats", b"no curr_items"))
            }
        }
    }

    fn run(&mut self, ops: &[u64], value: &[u8], out: &mut [u8]) -> io::Result<u64> {
        let mut hits = 0;
        for chunk in ops.chunks(self.pipeline) {
            for &op in chunk {
                if op & SET == 0 {
                    self.push_get(op);
                } else {
                    self.push_set(op & !SET, value);
                }
            }
            self.flush()?;
            for &op in chunk {
                if op & SET == 0 {
                    hits += self.read_get(out)? as u64;
                } else {
                    self.read_set()?;
                }
            }
        }
        Ok(hits)
    }
}

impl Worker for Client {
    fn get(&mut self, key: u64, out: &mut [u8]) -> bool {
        self.run(&[key & !SET], &[], out).expect("server get") == 1
    }
    fn set(&mut self, key: u64, value: &[u8]) {
        self.run(&[key | SET], value, &mut []).expect("server set");
    }
    fn batch(&mut self, ops: &[u64], value: &[u8], out: &mut [u8]) -> u64 {
        self.run(ops, value, out).expect("server batch")
    }
}

#[cfg(test)]
mod tests {
    use super::hex_key;

    #[test]
    fn hex_keys_are_fixed_width_and_distinct() {
        assert_eq!(&hex_key(0), b"0000000000000000");
        assert_eq!(&hex_key(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        assert_ne!(hex_key(1), hex_key(1 << 60));
    }
}
