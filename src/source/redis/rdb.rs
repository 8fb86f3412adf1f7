//! A streaming RDB walker: follows every record of an RDB file to find key boundaries.
//!
//! Two uses, one parser: `walk` skips values without keeping them and counts keys and expiring
//! keys per database (the facts a verification compares against); `replay` additionally hands
//! each key, its absolute expiry and its value bytes to a callback — the value bytes of an RDB
//! record are exactly the body of a `DUMP` payload, which is how a live restore replays keys
//! with `RESTORE`. Memory is bounded by the largest single value, never the file.
//!
//! Covers the formats Redis 7.0–7.2 write (RDB versions up to 11): strings (raw, int, LZF),
//! lists, sets, sorted sets, hashes in every encoding (ziplist, listpack, intset, quicklist),
//! streams (listpacks v1–v3 with consumer groups), functions. Module values are refused with a
//! clear error rather than guessed at.

use std::collections::BTreeMap;
use std::io::Read;

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct DbFacts {
    pub keys: u64,
    pub expiring: u64,
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct RdbFacts {
    pub version: u32,
    /// Keys and expiring keys per database number.
    pub dbs: BTreeMap<u32, DbFacts>,
}

/// One record handed to `replay`'s callback.
pub enum Record<'a> {
    /// The file's RDB version, first of all.
    Header(u32),
    Key {
        db: u32,
        key: Vec<u8>,
        /// Absolute expiry, Unix milliseconds.
        expire_ms: Option<i64>,
        /// The value's type byte followed by its RDB encoding: a `DUMP` payload minus footer.
        value: &'a [u8],
    },
    /// A function library's code (`FUNCTION LOAD`), Redis 7+.
    Function(Vec<u8>),
}

pub struct Walker<R: Read> {
    r: R,
    /// While `Some`, every byte read is appended here (a value being captured).
    cap: Option<Vec<u8>>,
}

type Res<T> = std::result::Result<T, String>;

/// Redis's `proto-max-bulk-len` default: no string value or key is longer.
const MAX_STRING: u64 = 512 * 1024 * 1024;

enum Len {
    Plain(u64),
    /// A special string encoding (int8/16/32, LZF).
    Enc(u8),
}

impl<R: Read> Walker<R> {
    pub fn new(r: R) -> Self {
        Walker { r, cap: None }
    }

    fn exact(&mut self, buf: &mut [u8]) -> Res<()> {
        self.r
            .read_exact(buf)
            .map_err(|e| format!("truncated RDB: {e}"))?;
        if let Some(c) = self.cap.as_mut() {
            c.extend_from_slice(buf);
        }
        Ok(())
    }

    fn byte(&mut self) -> Res<u8> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    fn skip(&mut self, n: u64) -> Res<()> {
        let src = &mut (&mut self.r).take(n);
        let copied = match self.cap.as_mut() {
            Some(c) => std::io::copy(src, c),
            None => std::io::copy(src, &mut std::io::sink()),
        }
        .map_err(|e| format!("truncated RDB: {e}"))?;
        if copied != n {
            return Err("truncated RDB".into());
        }
        Ok(())
    }

    /// Read `n` bytes whose count came from the stream itself. A corrupt length must not
    /// size an allocation (the CRC that would catch it comes at the end): the buffer grows
    /// only as bytes actually arrive, and no string exceeds Redis's own 512 MB limit.
    fn claimed(&mut self, n: u64) -> Res<Vec<u8>> {
        if n > MAX_STRING {
            return Err(format!(
                "corrupt RDB: a string of {n} bytes (Redis allows at most {MAX_STRING})"
            ));
        }
        let mut v = Vec::with_capacity((n as usize).min(64 * 1024));
        let got = (&mut self.r)
            .take(n)
            .read_to_end(&mut v)
            .map_err(|e| format!("truncated RDB: {e}"))?;
        if got as u64 != n {
            return Err(format!(
                "truncated RDB: a string of {n} bytes ends after {got}"
            ));
        }
        if let Some(c) = self.cap.as_mut() {
            c.extend_from_slice(&v);
        }
        Ok(v)
    }

    /// Read a string in full (keys, function code): raw, integer-encoded or LZF-compressed.
    fn string(&mut self) -> Res<Vec<u8>> {
        let read = |w: &mut Self, n: usize| -> Res<Vec<u8>> { w.claimed(n as u64) };
        Ok(match self.len_or_enc()? {
            Len::Plain(n) => read(self, n as usize)?,
            Len::Enc(0) => (read(self, 1)?[0] as i8).to_string().into_bytes(),
            Len::Enc(1) => i16::from_le_bytes([self.byte()?, self.byte()?])
                .to_string()
                .into_bytes(),
            Len::Enc(2) => {
                let b = read(self, 4)?;
                i32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    .to_string()
                    .into_bytes()
            }
            Len::Enc(3) => {
                let clen = self.len()? as usize;
                let ulen = self.len()? as usize;
                lzf_decompress(&read(self, clen)?, ulen)?
            }
            Len::Enc(e) => return Err(format!("unknown string encoding {e}")),
        })
    }

    fn len_or_enc(&mut self) -> Res<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => {
                let mut x = [0u8; 4];
                self.exact(&mut x)?;
                Len::Plain(u32::from_be_bytes(x) as u64)
            }
            2 if b == 0x81 => {
                let mut x = [0u8; 8];
                self.exact(&mut x)?;
                Len::Plain(u64::from_be_bytes(x))
            }
            3 => Len::Enc(b & 0x3f),
            _ => return Err(format!("bad length byte {b:#x}")),
        })
    }

    fn len(&mut self) -> Res<u64> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Enc(e) => Err(format!("expected a length, found string encoding {e}")),
        }
    }

    fn skip_string(&mut self) -> Res<()> {
        match self.len_or_enc()? {
            Len::Plain(n) => self.skip(n),
            Len::Enc(0) => self.skip(1),
            Len::Enc(1) => self.skip(2),
            Len::Enc(2) => self.skip(4),
            Len::Enc(3) => {
                let clen = self.len()?;
                let _ulen = self.len()?;
                self.skip(clen)
            }
            Len::Enc(e) => Err(format!("unknown string encoding {e}")),
        }
    }

    fn skip_strings(&mut self, per_item: u64) -> Res<()> {
        let n = self.len()?;
        for _ in 0..n * per_item {
            self.skip_string()?;
        }
        Ok(())
    }

    fn skip_value(&mut self, t: u8) -> Res<()> {
        match t {
            0 | 9..=13 | 16 | 17 | 20 => self.skip_string(),
            1 | 2 => self.skip_strings(1),
            4 => self.skip_strings(2),
            3 => {
                for _ in 0..self.len()? {
                    self.skip_string()?;
                    let l = self.byte()?;
                    if l < 253 {
                        self.skip(l as u64)?;
                    }
                }
                Ok(())
            }
            5 => {
                for _ in 0..self.len()? {
                    self.skip_string()?;
                    self.skip(8)?;
                }
                Ok(())
            }
            14 => self.skip_strings(1),
            18 => {
                for _ in 0..self.len()? {
                    self.len()?; // container kind
                    self.skip_string()?;
                }
                Ok(())
            }
            15 | 19 | 21 => self.skip_stream(t),
            6 | 7 => Err("the RDB holds a module value (Redis module data type), which drctl cannot parse yet".into()),
            other => Err(format!("unknown RDB value type {other} (newer than this drctl understands)")),
        }
    }

    fn skip_stream(&mut self, t: u8) -> Res<()> {
        self.skip_strings(2)?; // listpacks: (node key, listpack)
        self.len()?; // length
        self.len()?;
        self.len()?; // last id
        if t >= 19 {
            for _ in 0..5 {
                self.len()?; // first id, max deleted id, entries added
            }
        }
        for _ in 0..self.len()? {
            self.skip_string()?; // group name
            self.len()?;
            self.len()?; // last id
            if t >= 19 {
                self.len()?; // entries read
            }
            for _ in 0..self.len()? {
                self.skip(16 + 8)?; // PEL: raw id, delivery time
                self.len()?; // delivery count
            }
            for _ in 0..self.len()? {
                self.skip_string()?; // consumer name
                self.skip(8)?; // seen time
                if t >= 21 {
                    self.skip(8)?; // active time
                }
                let pel = self.len()?;
                self.skip(pel * 16)?;
            }
        }
        Ok(())
    }

    /// Walk the whole file up to the EOF opcode (the 8-byte checksum after it is not read),
    /// counting keys per database.
    pub fn walk(self) -> Res<RdbFacts> {
        self.run(None)
    }

    /// Walk the file and hand every key (with its value bytes) and function to `f`.
    pub fn replay(self, mut f: impl FnMut(Record<'_>) -> Res<()>) -> Res<RdbFacts> {
        self.run(Some(&mut f))
    }

    #[allow(clippy::type_complexity)]
    fn run(mut self, mut f: Option<&mut dyn FnMut(Record<'_>) -> Res<()>>) -> Res<RdbFacts> {
        let mut magic = [0u8; 9];
        self.exact(&mut magic)
            .map_err(|e| format!("{e} (in the header)"))?;
        if &magic[..5] != b"REDIS" {
            return Err("not an RDB file (no REDIS magic)".into());
        }
        let version: u32 = std::str::from_utf8(&magic[5..])
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or("bad RDB version")?;
        let mut facts = RdbFacts {
            version,
            ..Default::default()
        };
        if let Some(f) = f.as_mut() {
            f(Record::Header(version))?;
        }
        let mut db = 0u32;
        let mut expire_ms: Option<i64> = None;
        loop {
            let op = self.byte()?;
            match op {
                0xFF => return Ok(facts),
                0xFE => db = self.len()? as u32,
                0xFD => {
                    let mut x = [0u8; 4];
                    self.exact(&mut x)?;
                    expire_ms = Some(u32::from_le_bytes(x) as i64 * 1000);
                }
                0xFC => {
                    let mut x = [0u8; 8];
                    self.exact(&mut x)?;
                    expire_ms = Some(i64::from_le_bytes(x));
                }
                0xFB => {
                    self.len()?;
                    self.len()?;
                }
                0xFA => {
                    self.skip_string()?;
                    self.skip_string()?;
                }
                0xF9 => self.skip(1)?,
                0xF8 => {
                    self.len()?;
                }
                0xF5 => match f.as_mut() {
                    Some(f) => f(Record::Function(self.string()?))?,
                    None => self.skip_string()?,
                },
                0xF7 | 0xF6 => {
                    return Err(
                        "the RDB holds module auxiliary data, which drctl cannot parse yet".into(),
                    )
                }
                t => {
                    match f.as_mut() {
                        None => {
                            self.skip_string()?; // key
                            self.skip_value(t)?;
                        }
                        Some(f) => {
                            let key = self.string()?;
                            self.cap = Some(vec![t]);
                            let done = self.skip_value(t);
                            let value = self.cap.take().unwrap_or_default();
                            done?;
                            f(Record::Key {
                                db,
                                key,
                                expire_ms,
                                value: &value,
                            })?;
                        }
                    }
                    let d = facts.dbs.entry(db).or_default();
                    d.keys += 1;
                    if expire_ms.is_some() {
                        d.expiring += 1;
                    }
                    expire_ms = None;
                }
            }
        }
    }
}

/// LZF decompression (liblzf's format, as Redis writes compressed strings).
fn lzf_decompress(input: &[u8], out_len: usize) -> Res<Vec<u8>> {
    let bad = || "corrupt LZF-compressed string".to_string();
    // A back-reference of at most 3 input bytes yields at most 264 output bytes: a claimed
    // length beyond that cannot be true, and must not size the allocation.
    if out_len > input.len().saturating_mul(88).saturating_add(32) {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let lit = input.get(i..i + ctrl + 1).ok_or_else(bad)?;
            out.extend_from_slice(lit);
            i += ctrl + 1;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i).ok_or_else(bad)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + 1 + *input.get(i).ok_or_else(bad)? as usize;
            i += 1;
            let start = out.len().checked_sub(back).ok_or_else(bad)?;
            if out.len() + len + 2 > out_len {
                return Err(bad());
            }
            for k in 0..len + 2 {
                out.push(out[start + k]);
            }
        }
    }
    if out.len() != out_len {
        return Err(bad());
    }
    Ok(out)
}

/// `Read` over chunks arriving on a channel: lets the synchronous walker follow an async stream.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Self {
        ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_small_rdb() {
        // REDIS0009, aux, selectdb 0, string k=v, expiring string (ms), selectdb 2, set {a,b}, EOF
        let mut f = b"REDIS0009".to_vec();
        f.extend([0xFA, 3]);
        f.extend(b"ver");
        f.extend([1, b'7']);
        f.extend([0xFE, 0, 0x00, 1, b'k', 1, b'v']);
        f.extend([0xFC]);
        f.extend(1_900_000_000_000u64.to_le_bytes());
        f.extend([0x00, 1, b't', 0xC0, 42]); // int8-encoded value
        f.extend([0xFE, 2, 0x02, 1, b's', 2, 1, b'a', 1, b'b']);
        f.push(0xFF);
        let facts = Walker::new(&f[..]).walk().unwrap();
        assert_eq!(facts.version, 9);
        assert_eq!(
            facts.dbs[&0],
            DbFacts {
                keys: 2,
                expiring: 1
            }
        );
        assert_eq!(
            facts.dbs[&2],
            DbFacts {
                keys: 1,
                expiring: 0
            }
        );
        assert!(Walker::new(&f[..f.len() - 3])
            .walk()
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn corrupt_lengths_never_size_an_allocation() {
        // Replay (restore) reads keys in full. A key claiming 1 TiB (64-bit length), then the stream ends: an error, not an abort.
        let mut f = b"REDIS0009".to_vec();
        f.extend([0xFE, 0, 0x00, 0x81]);
        f.extend((1u64 << 40).to_be_bytes());
        f.extend(b"abc");
        let e = Walker::new(&f[..]).replay(|_| Ok(())).unwrap_err();
        assert!(e.contains("corrupt RDB"), "{e}");
        // 100 MB claimed (under Redis's limit), 3 bytes present: truncated, nothing reserved.
        let mut f = b"REDIS0009".to_vec();
        f.extend([0xFE, 0, 0x00, 0x80]);
        f.extend(100_000_000u32.to_be_bytes());
        f.extend(b"abc");
        let e = Walker::new(&f[..]).replay(|_| Ok(())).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        // An LZF string claiming 1 TiB uncompressed from 2 bytes.
        let mut f = b"REDIS0009".to_vec();
        f.extend([0xFE, 0, 0x00, 0xC3, 0x02, 0x81]);
        f.extend((1u64 << 40).to_be_bytes());
        f.extend([0x00, b'x']);
        assert!(Walker::new(&f[..])
            .replay(|_| Ok(()))
            .unwrap_err()
            .contains("corrupt"));
    }

    #[test]
    fn lzf_literals_and_back_references() {
        // literal "ab", then copy 8 bytes from 2 back (len 6 + 2)
        assert_eq!(
            lzf_decompress(&[0x01, b'a', b'b', 0xC0, 0x01], 10).unwrap(),
            b"ababababab"
        );
        // long match: len 7 + extra byte 3 + 2 = 12 bytes from 1 back
        assert_eq!(
            lzf_decompress(&[0x00, b'x', 0xE0, 0x03, 0x00], 13).unwrap(),
            vec![b'x'; 13]
        );
        assert!(lzf_decompress(&[0xC0, 0x05], 8).is_err());
    }

    #[test]
    fn replay_hands_out_keys_values_and_expiry() {
        let mut f = b"REDIS0009".to_vec();
        f.extend([0xFE, 1, 0xFC]);
        f.extend(1_900_000_000_000u64.to_le_bytes());
        f.extend([0x00, 0xC1, 0x39, 0x30, 3, b'a', b'b', b'c']); // key int16 12345
        f.extend([0x02, 1, b's', 2, 1, b'a', 1, b'b']);
        f.push(0xFF);
        let mut got = Vec::new();
        let facts = Walker::new(&f[..])
            .replay(|r| {
                if let Record::Key {
                    db,
                    key,
                    expire_ms,
                    value,
                } = r
                {
                    got.push((db, key, expire_ms, value.to_vec()));
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(facts.dbs[&1].keys, 2);
        assert_eq!(
            got,
            vec![
                (
                    1,
                    b"12345".to_vec(),
                    Some(1_900_000_000_000),
                    b"\x00\x03abc".to_vec()
                ),
                (1, b"s".to_vec(), None, b"\x02\x02\x01a\x01b".to_vec()),
            ]
        );
    }
}
