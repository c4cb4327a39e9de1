use super::*;

/// A value as plain data, sets and hashes sorted, to compare.
fn render(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::Str(_) | Value::Int(_) => vec![v.to_bytes().unwrap().to_vec()],
        Value::List(l) => l.iter().map(<[u8]>::to_vec).collect(),
        Value::Set(s) => {
            let mut m: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
            m.sort();
            m
        }
        Value::Hash(h) => {
            let mut p: Vec<(Vec<u8>, Vec<u8>)> =
                h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            p.sort();
            p.into_iter().flat_map(|(f, v)| [f, v]).collect()
        }
        Value::Zset(z) => z
            .iter()
            .flat_map(|(m, s)| [m.to_vec(), s.to_string().into_bytes()])
            .collect(),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn strs(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// DUMP output of redis-server 7.0.15 for small values of each common encoding.
fn redis_payloads() -> Vec<(&'static str, Vec<Vec<u8>>, &'static str)> {
    vec![
        // SET int -12345: a 16-bit integer encoding.
        ("00c1c7cf0a0067eda236b4db26d0", strs(&["-12345"]), "string"),
        // SET lzf <100 x 'a'>: LZF-compressed.
        (
            "00c3094064016161e057000161610a00e8a3b507b06df271",
            vec![vec![b'a'; 100]],
            "string",
        ),
        // RPUSH list a b 1 -300 70000: quicklist of one listpack (7-bit, 13-bit, 24-bit ints).
        (
            "120102171700000005008161028162020101ded402f270110104ff0a00a692bfe23f431b0d",
            strs(&["a", "b", "1", "-300", "70000"]),
            "list",
        ),
        // SADD iset 1 2 -5: an intset of 16-bit members.
        (
            "0b0e0200000003000000fbff010002000a00492eed6ec0078cef",
            strs(&["-5", "1", "2"]),
            "set",
        ),
        // SADD sset x y: a plain set.
        ("0202017901780a000cdf6b3db330bcf0", strs(&["x", "y"]), "set"),
        // HSET hash f v n 12: a listpack hash.
        (
            "1012120000000400816602817602816e020c01ff0a0001369481d35b8974",
            strs(&["f", "v", "n", "12"]),
            "hash",
        ),
    ]
}

#[test]
fn crc64_is_jones() {
    // Redis's crc64 test vector.
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    assert_eq!(crc64(b""), 0);
}

#[test]
fn redis_payloads_decode_to_their_values() {
    for (payload, want, kind) in redis_payloads() {
        let v = restore(&hex(payload)).unwrap_or_else(|e| panic!("{payload}: {e:?}"));
        assert_eq!(v.type_name(), kind, "{payload}");
        assert_eq!(render(&v), want, "{payload}");
        // And back: Lethe's own payload decodes to the same value.
        let again = restore(&dump(&v)).unwrap();
        assert_eq!(render(&again), want, "{payload}");
    }
}

#[test]
fn dumps_round_trip_every_type() {
    let mut list = List::new();
    let mut set = Set::new();
    let mut hash = Hash::new();
    for i in 0..300 {
        let s = format!("element-{i}");
        list.push_back(s.as_bytes());
        set.insert(s.as_bytes());
        hash.insert(s.as_bytes(), i.to_string().as_bytes());
    }
    for v in [
        Value::Int(i64::MIN),
        Value::Int(7),
        Value::Int(70_000),
        Value::Int(1 << 40),
        Value::string(&[0u8; 20_000]),
        Value::string(b""),
        Value::List(Box::new(list)),
        Value::Set(Box::new(set)),
        Value::Hash(Box::new(hash)),
    ] {
        let p = dump(&v);
        assert_eq!(&p[p.len() - 10..p.len() - 8], &RDB_VERSION.to_le_bytes());
        assert_eq!(render(&restore(&p).unwrap()), render(&v));
    }
}

#[test]
fn lzf_handles_literals_and_overlapping_references() {
    // "abcabcabcX": literal "abc", back reference 3 with length 6 (overlapping), literal "X".
    let input = [2, b'a', b'b', b'c', (4 << 5), 2, 0, b'X'];
    assert_eq!(lzf_decompress(&input, 10).unwrap(), b"abcabcabcX");
    // Wrong expected lengths, references before the start, truncated input.
    assert_eq!(lzf_decompress(&input, 9), Err(Error::Format));
    assert_eq!(lzf_decompress(&input, 11), Err(Error::Format));
    assert_eq!(lzf_decompress(&[(1 << 5), 5], 3), Err(Error::Format));
    assert_eq!(lzf_decompress(&[3, b'a'], 4), Err(Error::Format));
    // A claim beyond LZF's expansion bound is refused before allocating.
    assert_eq!(lzf_decompress(&[0, b'a'], u64::MAX), Err(Error::Format));
}

/// A payload around `body` (type byte and value) with a valid trailer.
fn wrap(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn envelopes_are_checked() {
    let good = dump(&Value::string(b"hello"));
    assert!(restore(&good).is_ok());
    assert_eq!(restore(&good[..9]).err(), Some(Error::Envelope));
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(restore(&bad).err(), Some(Error::Envelope));
    // A newer RDB version than Lethe reads.
    let mut newer = b"\x00\x01x".to_vec();
    newer.extend_from_slice(&12u16.to_le_bytes());
    let crc = crc64(&newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(restore(&newer).err(), Some(Error::Envelope));
}

#[test]
fn hostile_lengths_fail_without_allocating_them() {
    // A list claiming 2^64-1 elements, a string claiming 4 GiB, an LZF string claiming a huge
    // output: each refused, quickly.
    for body in [
        &[
            TYPE_LIST, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ][..],
        &[TYPE_STRING, 0x80, 0xff, 0xff, 0xff, 0xff, b'x'],
        &[
            TYPE_STRING,
            0xc3,
            0x02,
            0x81,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0,
            b'a',
        ],
        // A listpack whose header claims more bytes than it has.
        &[TYPE_HASH_LISTPACK, 7, 0xff, 0xff, 0, 0, 2, 0, 0xff],
        // An intset whose length disagrees with its size.
        &[TYPE_SET_INTSET, 8, 2, 0, 0, 0, 9, 0, 0, 0],
        // Empty collections.
        &[TYPE_LIST, 0],
        &[TYPE_SET, 0],
        // Duplicate set members and hash fields.
        &[TYPE_SET, 2, 1, b'a', 1, b'a'],
        &[TYPE_HASH, 2, 1, b'f', 1, b'1', 1, b'f', 1, b'2'],
        // Sorted sets: a duplicate member, a NaN score (binary and text), an empty one.
        &[
            5, 2, 1, b'm', 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 0x40,
        ],
        &[5, 1, 1, b'm', 0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
        &[3, 1, 1, b'm', 253],
        &[5, 0],
    ] {
        assert_eq!(restore(&wrap(body)).err(), Some(Error::Format), "{body:?}");
    }
}

#[test]
fn sorted_sets_round_trip_and_read_the_text_score_form() {
    let mut z = Zset::new();
    for (i, m) in ["a", "b", "c"].iter().enumerate() {
        z.insert(m.as_bytes(), i as f64 + 0.5);
    }
    z.insert(b"inf", f64::INFINITY);
    let value = Value::Zset(Box::new(z));
    let back = restore(&dump(&value)).unwrap();
    assert_eq!(render(&back), render(&value));
    // Type 3: scores as length-prefixed text, 254 for +inf.
    let old = restore(&wrap(&[3, 2, 1, b'x', 3, b'1', b'.', b'5', 1, b'y', 254])).unwrap();
    let Value::Zset(z) = old else {
        panic!("not a sorted set")
    };
    assert_eq!(z.score(b"x"), Some(1.5));
    assert_eq!(z.score(b"y"), Some(f64::INFINITY));
}

/// A small deterministic generator (xorshift), so the fuzzing is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_corrupted_payloads_never_panic() {
    let mut seeds: Vec<Vec<u8>> = redis_payloads().iter().map(|(p, ..)| hex(p)).collect();
    let mut list = List::new();
    for i in 0..50 {
        list.push_back(format!("{i}").as_bytes());
    }
    seeds.push(dump(&Value::List(Box::new(list))));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in &seeds {
        let body = &seed[..seed.len() - 10];
        // Every truncation of the value, with a valid trailer: refused, never a panic.
        for cut in 0..body.len() {
            let _ = restore(&wrap(&body[..cut]));
            // Cutting the raw payload breaks its checksum or length.
            assert!(restore(&seed[..cut]).is_err());
        }
        // Single-byte corruptions (with the checksum fixed up) and random splices.
        for _ in 0..2000 {
            let mut b = body.to_vec();
            let flips = 1 + rng.next() % 3;
            for _ in 0..flips {
                let i = (rng.next() % b.len() as u64) as usize;
                b[i] = rng.next() as u8;
            }
            if rng.next() % 4 == 0 {
                let at = (rng.next() % b.len() as u64) as usize;
                b.insert(at, rng.next() as u8);
            }
            if let Ok(v) = restore(&wrap(&b)) {
                // Whatever decodes is a well-formed value that dumps and decodes again.
                assert_eq!(render(&restore(&dump(&v)).unwrap()), render(&v));
            }
        }
    }
    // Random bodies of each type.
    for _ in 0..5000 {
        let len = (rng.next() % 40) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = b.first_mut() {
            *first %= 22;
        }
        let _ = restore(&wrap(&b));
    }
}

#[test]
fn older_and_newer_encodings_decode() {
    // A ziplist of "a", 5 (an immediate), 300 (16-bit) and "b".
    let zl = hex("17000000130000000400000161 03f6 02c02c01 040162 ff"
        .replace(' ', "")
        .as_str());
    let mut list_zl = vec![TYPE_LIST_ZIPLIST, zl.len() as u8];
    list_zl.extend_from_slice(&zl);
    let mut quick = vec![TYPE_LIST_QUICKLIST, 2, zl.len() as u8];
    quick.extend_from_slice(&zl);
    quick.push(zl.len() as u8);
    quick.extend_from_slice(&zl);
    let mut hash_zl = vec![TYPE_HASH_ZIPLIST, zl.len() as u8];
    hash_zl.extend_from_slice(&zl);
    // A quicklist 2 of a plain node and a listpack node (Redis's listpack of a list above).
    let lp = hex("1700000005008161028162020101ded402f270110104ff");
    let mut quick2 = vec![
        TYPE_LIST_QUICKLIST_2,
        2,
        1,
        3,
        b'b',
        b'i',
        b'g',
        2,
        lp.len() as u8,
    ];
    quick2.extend_from_slice(&lp);
    // Redis 7.2's listpack set.
    let set_lp = [
        TYPE_SET_LISTPACK,
        13,
        13,
        0,
        0,
        0,
        2,
        0,
        0x81,
        b'x',
        2,
        0x81,
        b'y',
        2,
        0xff,
    ];
    for (body, kind, want) in [
        (list_zl, "list", strs(&["a", "5", "300", "b"])),
        (
            quick,
            "list",
            strs(&["a", "5", "300", "b", "a", "5", "300", "b"]),
        ),
        (hash_zl, "hash", strs(&["300", "b", "a", "5"])),
        (
            quick2,
            "list",
            strs(&["big", "a", "b", "1", "-300", "70000"]),
        ),
        (set_lp.to_vec(), "set", strs(&["x", "y"])),
    ] {
        let v = restore(&wrap(&body)).unwrap_or_else(|e| panic!("{kind} {body:?}: {e:?}"));
        assert_eq!(v.type_name(), kind);
        assert_eq!(render(&v), want);
    }
}
