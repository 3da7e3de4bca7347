//! A streaming ZIP writer for a study's result files: stored (uncompressed) entries, UTF-8
//! names, ZIP64 records when sizes, offsets or the entry count need them.
//!
//! Each file is read twice (CRC-32 first, then the bytes), so every local header carries its
//! CRC and sizes and the archive needs no data descriptors: any reader, streaming or not, opens
//! it. Nothing is buffered beyond a 64 KiB copy buffer; the writer only needs `Write`.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::model::Millis;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// General purpose flag: names are UTF-8.
const FLAG_UTF8: u16 = 0x0800;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// One entry as the central directory needs it.
struct Entry {
    name: Vec<u8>,
    crc: u32,
    size: u64,
    offset: u64,
    time: u16,
    date: u16,
}

/// Writes a ZIP archive entry by entry; call [`ZipWriter::finish`] to write the directory.
pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    entries: Vec<Entry>,
    force_zip64: bool,
}

impl<W: Write> ZipWriter<W> {
    /// An archive written to `out`.
    pub fn new(out: W) -> ZipWriter<W> {
        ZipWriter {
            out,
            offset: 0,
            entries: Vec::new(),
            force_zip64: false,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.offset += b.len() as u64;
        Ok(())
    }

    /// Adds a file's bytes from the start of `file` (read twice: CRC, then data).
    pub fn add_file<R: Read + Seek>(
        &mut self,
        name: &str,
        mtime: Millis,
        file: &mut R,
    ) -> io::Result<()> {
        file.seek(SeekFrom::Start(0))?;
        let mut crc = Crc32::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            size += n as u64;
        }
        file.seek(SeekFrom::Start(0))?;
        self.header(name, mtime, crc.finish(), size)?;
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{name} shrank while it was being archived"),
                ));
            }
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Adds an entry from memory.
    pub fn add_bytes(&mut self, name: &str, mtime: Millis, data: &[u8]) -> io::Result<()> {
        let mut crc = Crc32::new();
        crc.update(data);
        self.header(name, mtime, crc.finish(), data.len() as u64)?;
        self.put(data)
    }

    fn header(&mut self, name: &str, mtime: Millis, crc: u32, size: u64) -> io::Result<()> {
        if name.is_empty() || name.len() > 0xFFFF || name.starts_with('/') || name.contains("..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad archive entry name {name:?}"),
            ));
        }
        let (time, date) = dos_time(mtime);
        let zip64 = self.force_zip64 || size >= U32_MAX;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
        h.extend_from_slice(&FLAG_UTF8.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // stored
        h.extend_from_slice(&time.to_le_bytes());
        h.extend_from_slice(&date.to_le_bytes());
        h.extend_from_slice(&crc.to_le_bytes());
        let small = if zip64 { U32_MAX as u32 } else { size as u32 };
        h.extend_from_slice(&small.to_le_bytes()); // compressed size
        h.extend_from_slice(&small.to_le_bytes()); // uncompressed size
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        if zip64 {
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&16u16.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
        }
        self.entries.push(Entry {
            name: name.as_bytes().to_vec(),
            crc,
            size,
            offset: self.offset,
            time,
            date,
        });
        self.put(&h)
    }

    /// Writes the central directory and the end records; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_start = self.offset;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let big_size = self.force_zip64 || e.size >= U32_MAX;
            let big_offset = self.force_zip64 || e.offset >= U32_MAX;
            let mut extra = Vec::new();
            if big_size {
                extra.extend_from_slice(&e.size.to_le_bytes());
                extra.extend_from_slice(&e.size.to_le_bytes());
            }
            if big_offset {
                extra.extend_from_slice(&e.offset.to_le_bytes());
            }
            let mut h = Vec::with_capacity(46 + e.name.len() + 4 + extra.len());
            h.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            let needed: u16 = if extra.is_empty() { 20 } else { 45 };
            h.extend_from_slice(&(0x0300u16 | 45).to_le_bytes()); // made by: Unix, 4.5
            h.extend_from_slice(&needed.to_le_bytes());
            h.extend_from_slice(&FLAG_UTF8.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&e.time.to_le_bytes());
            h.extend_from_slice(&e.date.to_le_bytes());
            h.extend_from_slice(&e.crc.to_le_bytes());
            let size = if big_size {
                U32_MAX as u32
            } else {
                e.size as u32
            };
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            let extra_len = if extra.is_empty() { 0 } else { 4 + extra.len() };
            h.extend_from_slice(&(extra_len as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // comment
            h.extend_from_slice(&0u16.to_le_bytes()); // disk
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // -rw-r--r--
            let off = if big_offset {
                U32_MAX as u32
            } else {
                e.offset as u32
            };
            h.extend_from_slice(&off.to_le_bytes());
            h.extend_from_slice(&e.name);
            if !extra.is_empty() {
                h.extend_from_slice(&1u16.to_le_bytes());
                h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
                h.extend_from_slice(&extra);
            }
            self.put(&h)?;
        }
        let cd_size = self.offset - cd_start;
        let n = entries.len() as u64;
        let zip64 = self.force_zip64 || n >= 0xFFFF || cd_start >= U32_MAX || cd_size >= U32_MAX;
        if zip64 {
            let rec_start = self.offset;
            let mut r = Vec::with_capacity(56 + 20);
            r.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            r.extend_from_slice(&44u64.to_le_bytes());
            r.extend_from_slice(&(0x0300u16 | 45).to_le_bytes());
            r.extend_from_slice(&45u16.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&n.to_le_bytes());
            r.extend_from_slice(&n.to_le_bytes());
            r.extend_from_slice(&cd_size.to_le_bytes());
            r.extend_from_slice(&cd_start.to_le_bytes());
            r.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&rec_start.to_le_bytes());
            r.extend_from_slice(&1u32.to_le_bytes());
            self.put(&r)?;
        }
        let mut r = Vec::with_capacity(22);
        r.extend_from_slice(&EOCD_SIG.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        let count = if zip64 { 0xFFFF } else { n as u16 };
        r.extend_from_slice(&count.to_le_bytes());
        r.extend_from_slice(&count.to_le_bytes());
        let (size32, start32) = if zip64 {
            (U32_MAX as u32, U32_MAX as u32)
        } else {
            (cd_size as u32, cd_start as u32)
        };
        r.extend_from_slice(&size32.to_le_bytes());
        r.extend_from_slice(&start32.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        self.put(&r)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// MS-DOS time and date of a UTC time (2-second resolution; 1980 at the earliest).
fn dos_time(ms: Millis) -> (u16, u16) {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = crate::time::civil_from_days(secs.div_euclid(86_400));
    if y < 1980 {
        return (0, (1 << 5) | 1);
    }
    let rem = secs.rem_euclid(86_400);
    let time = ((rem / 3600) << 11) | (((rem % 3600) / 60) << 5) | ((rem % 60) / 2);
    let date = (((y - 1980).min(127)) << 9) | ((m as i64) << 5) | d as i64;
    (time as u16, date as u16)
}

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses it).
pub struct Crc32 {
    value: u32,
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32 { value: 0xFFFF_FFFF }
    }
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.value;
        for &b in data {
            c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.value = c;
    }
    pub fn finish(&self) -> u32 {
        self.value ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_le_bytes([b[i], b[i + 1]])
    }
    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
    }

    /// Reads an archive through its central directory (ZIP64 aware) and checks every entry's
    /// local header and CRC: (name, data).
    fn read_zip(b: &[u8]) -> Vec<(String, Vec<u8>)> {
        let eocd = b.len() - 22;
        assert_eq!(u32_at(b, eocd), EOCD_SIG);
        let mut n = u16_at(b, eocd + 10) as u64;
        let mut cd = u32_at(b, eocd + 16) as u64;
        if n == 0xFFFF {
            let loc = eocd - 20;
            assert_eq!(u32_at(b, loc), ZIP64_LOCATOR_SIG);
            let rec = u64_at(b, loc + 8) as usize;
            assert_eq!(u32_at(b, rec), ZIP64_EOCD_SIG);
            n = u64_at(b, rec + 32);
            cd = u64_at(b, rec + 48);
        }
        let mut out = Vec::new();
        let mut p = cd as usize;
        for _ in 0..n {
            assert_eq!(u32_at(b, p), CENTRAL_SIG);
            let crc = u32_at(b, p + 16);
            let mut size = u32_at(b, p + 24) as u64;
            let name_len = u16_at(b, p + 28) as usize;
            let extra_len = u16_at(b, p + 30) as usize;
            let mut offset = u32_at(b, p + 42) as u64;
            let name = String::from_utf8(b[p + 46..p + 46 + name_len].to_vec()).unwrap();
            let mut e = p + 46 + name_len;
            if extra_len > 0 {
                assert_eq!(u16_at(b, e), 1);
                e += 4;
                if size == U32_MAX {
                    size = u64_at(b, e);
                    e += 16;
                }
                if offset == U32_MAX {
                    offset = u64_at(b, e);
                }
            }
            let l = offset as usize;
            assert_eq!(u32_at(b, l), LOCAL_SIG);
            assert_eq!(u32_at(b, l + 14), crc);
            let data_start = l + 30 + u16_at(b, l + 26) as usize + u16_at(b, l + 28) as usize;
            let data = b[data_start..data_start + size as usize].to_vec();
            let mut c = Crc32::new();
            c.update(&data);
            assert_eq!(c.finish(), crc, "{name}");
            out.push((name, data));
            p += 46 + name_len + extra_len;
        }
        out
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn archives_read_back_plain_and_zip64() {
        for force in [false, true] {
            let mut z = ZipWriter::new(Vec::new());
            z.force_zip64 = force;
            let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
            z.add_file(
                "s/job-1/curve.csv",
                1_700_000_000_000,
                &mut std::io::Cursor::new(big.clone()),
            )
            .unwrap();
            z.add_bytes("s/job-2/empty.txt", 0, b"").unwrap();
            z.add_bytes("s/job-2/ünï.json", 1_700_000_000_000, b"{}")
                .unwrap();
            let bytes = z.finish().unwrap();
            let back = read_zip(&bytes);
            assert_eq!(back.len(), 3);
            assert_eq!(back[0], ("s/job-1/curve.csv".to_string(), big));
            assert_eq!(back[1].1, b"");
            assert_eq!(back[2], ("s/job-2/ünï.json".to_string(), b"{}".to_vec()));
        }
        let mut z = ZipWriter::new(Vec::new());
        assert!(z.add_bytes("../evil", 0, b"x").is_err());
        assert_eq!(z.finish().unwrap().len(), 22);
    }

    #[test]
    fn dos_times() {
        // 2023-11-14 22:13:20 UTC
        let (t, d) = dos_time(1_700_000_000_000);
        assert_eq!(t >> 11, 22);
        assert_eq!((t >> 5) & 63, 13);
        assert_eq!((t & 31) * 2, 20);
        assert_eq!(d >> 9, 2023 - 1980);
        assert_eq!((d >> 5) & 15, 11);
        assert_eq!(d & 31, 14);
    }
}
