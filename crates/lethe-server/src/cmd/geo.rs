//! GEO commands: positions kept in a sorted set, each member's score its 52-bit geohash (see
//! `geohash`), as in Redis: GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE. A
//! geo set is an ordinary sorted set to every other command.
//!
//! Replies are Redis 7.0's: coordinates printed as its `long double` human text, distances with
//! four decimals, search results in the order Redis finds them (its nine geohash boxes, each in
//! score order) unless sorted by distance.

use super::command::{Doc, KeySpec, acl, f, ks};
use super::geohash::{self, Shape, ShapeKind};
use super::long_double::LongDouble;
use super::zset_range::store;
use super::zsets::{AddOpts, get_zset, not_float, parse_score, zadd};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::{SmallBytes, Zset};
use crate::parse::{Parse, parse_int};
use bytes::Bytes;

/// A coordinate as Redis prints one (`addReplyHumanLongDouble`).
fn coordinate(v: f64) -> Frame {
    Frame::DoubleText(LongDouble::from_f64(v).map_or_else(|| v.to_string(), LongDouble::to_human))
}

fn coordinates(lon: f64, lat: f64) -> Frame {
    Frame::Array(vec![coordinate(lon), coordinate(lat)])
}

/// A distance as Redis prints one: four decimals, a bulk string in both protocols.
fn distance_reply(d: f64) -> Frame {
    Frame::Bulk(Bytes::from(format!("{d:.4}")))
}

/// A longitude and latitude argument pair, checked against the encodable range.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CommandError> {
    let lon = parse_score(lon).ok_or_else(not_float)?;
    let lat = parse_score(lat).ok_or_else(not_float)?;
    if !(geohash::LON_MIN..=geohash::LON_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(CommandError::err(&format!(
            "invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Meters per unit: `m`, `km`, `ft`, `mi` (any case), with Redis's factors (`geo.c`'s
/// `extractUnitOrReply`: a foot is 0.3048 m, a mile 1609.34 m).
fn unit(b: &[u8]) -> Result<f64, CommandError> {
    match b.to_ascii_lowercase().as_slice() {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(CommandError::err(
            "unsupported unit provided. please use M, KM, FT, MI",
        )),
    }
}

#[derive(Debug)]
pub struct GeoAdd(Bytes, AddOpts, Vec<(f64, Bytes)>);

impl Command for GeoAdd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let rest: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        let mut o = AddOpts::default();
        let mut used = 0;
        for arg in &rest {
            match arg.to_ascii_uppercase().as_slice() {
                b"NX" => o.nx = true,
                b"XX" => o.xx = true,
                b"CH" => o.ch = true,
                _ => break,
            }
            used += 1;
        }
        let triples = &rest[used..];
        if triples.is_empty() || triples.len() % 3 != 0 || (o.nx && o.xx) {
            return Err(CommandError::syntax());
        }
        let mut pairs = Vec::with_capacity(triples.len() / 3);
        for t in triples.chunks(3) {
            let (lon, lat) = lon_lat(&t[0], &t[1])?;
            let hash = geohash::encode(lon, lat, geohash::STEP_MAX).expect("checked range");
            pairs.push((hash.bits as f64, t[2].clone()));
        }
        Ok(GeoAdd(key, o, pairs))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let GeoAdd(key, opts, pairs) = &self;
        let out = cx.write([&key[..]], |t| zadd(state, t, key, *opts, pairs))??;
        Ok(Frame::Integer(if opts.ch {
            out.added + out.updated
        } else {
            out.added
        }))
    }
}

#[derive(Debug)]
pub struct GeoPos(Bytes, Vec<Bytes>);

impl Command for GeoPos {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GeoPos(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let z = get_zset(t, &self.0)?;
            Ok(Frame::Array(
                self.1
                    .iter()
                    .map(|m| match z.and_then(|z| z.score(m)) {
                        Some(s) => {
                            let (lon, lat) = geohash::position(s);
                            coordinates(lon, lat)
                        }
                        None => Frame::NullArray,
                    })
                    .collect(),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct GeoDist(Bytes, Bytes, Bytes, f64);

impl Command for GeoDist {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (key, a, b) = (args.next_bytes()?, args.next_bytes()?, args.next_bytes()?);
        let to_meters = match args.try_next() {
            None => 1.0,
            Some(u) if args.remaining() == 0 => unit(&u)?,
            Some(_) => return Err(CommandError::syntax()),
        };
        Ok(GeoDist(key, a, b, to_meters))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let z = get_zset(t, &self.0)?;
            let scores = z.and_then(|z| Some((z.score(&self.1)?, z.score(&self.2)?)));
            Ok(match scores {
                None => Frame::Null,
                Some((a, b)) => {
                    let (alon, alat) = geohash::position(a);
                    let (blon, blat) = geohash::position(b);
                    distance_reply(geohash::distance(alon, alat, blon, blat) / self.3)
                }
            })
        })?
    }
}

#[derive(Debug)]
pub struct GeoHash(Bytes, Vec<Bytes>);

impl Command for GeoHash {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GeoHash(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let z = get_zset(t, &self.0)?;
            Ok(Frame::Array(
                self.1
                    .iter()
                    .map(|m| match z.and_then(|z| z.score(m)) {
                        Some(s) => {
                            let (lon, lat) = geohash::position(s);
                            Frame::Bulk(Bytes::from(geohash::hash_string(lon, lat)))
                        }
                        None => Frame::Null,
                    })
                    .collect(),
            ))
        })?
    }
}

/// Distance order of a search's results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A search's options once read (against the source set, for FROMMEMBER).
#[derive(Debug)]
struct Search {
    shape: Shape,
    sort: Sort,
    count: usize,
    any: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    storedist: bool,
}

impl Search {
    fn new() -> Search {
        Search {
            shape: Shape {
                center: (0.0, 0.0),
                to_meters: 1.0,
                kind: ShapeKind::Radius(0.0),
            },
            sort: Sort::None,
            count: 0,
            any: false,
            withdist: false,
            withhash: false,
            withcoord: false,
            storedist: false,
        }
    }

    /// COUNT alone means the nearest: sorted ascending (not with ANY, which takes any).
    fn finish(mut self) -> Search {
        if self.count != 0 && self.sort == Sort::None && !self.any {
            self.sort = Sort::Asc;
        }
        self
    }
}

/// Reads the option at `raw[i]` if it is one GEOSEARCH and GEORADIUS share: how many
/// arguments it took (0: not one of them).
fn shared_option(s: &mut Search, raw: &[Bytes], i: usize) -> Result<usize, CommandError> {
    let left = raw.len() - i - 1;
    match raw[i].to_ascii_uppercase().as_slice() {
        b"WITHDIST" => s.withdist = true,
        b"WITHHASH" => s.withhash = true,
        b"WITHCOORD" => s.withcoord = true,
        b"ANY" => s.any = true,
        b"ASC" => s.sort = Sort::Asc,
        b"DESC" => s.sort = Sort::Desc,
        b"COUNT" if left >= 1 => {
            let n = parse_int(&raw[i + 1]).ok_or_else(CommandError::not_integer)?;
            if n <= 0 {
                return Err(CommandError::err("COUNT must be > 0"));
            }
            s.count = usize::try_from(n).unwrap_or(usize::MAX);
            return Ok(2);
        }
        _ => return Ok(0),
    }
    Ok(1)
}

/// A radius (`need numeric radius`, not negative) and its unit.
fn radius(r: &[u8], u: &[u8]) -> Result<(ShapeKind, f64), CommandError> {
    let r = parse_score(r).ok_or_else(|| CommandError::err("need numeric radius"))?;
    if r < 0.0 {
        return Err(CommandError::err("radius cannot be negative"));
    }
    Ok((ShapeKind::Radius(r), unit(u)?))
}

/// One point found: member, distance from the center (in the search's unit), score, position.
struct Found<'z> {
    member: &'z [u8],
    dist: f64,
    score: f64,
    lon: f64,
    lat: f64,
}

/// Reads GEOSEARCH's options (`store`: GEOSEARCHSTORE's, which add STOREDIST and refuse the
/// WITH* ones), in Redis 7.0's order of checks. `name` is the command as the client spelled
/// it, which Redis's messages quote. `Ok(None)`: the source set is missing.
fn parse_search(
    z: Option<&Zset>,
    raw: &[Bytes],
    name: &str,
    store: bool,
) -> Result<Option<Search>, CommandError> {
    let mut center = None;
    let mut from_member = false;
    let mut shape = None;
    let mut s = Search::new();
    let mut i = 0;
    while i < raw.len() {
        let arg = raw[i].to_ascii_uppercase();
        let left = raw.len() - i - 1;
        let from_set = center.is_some() || from_member;
        let used = shared_option(&mut s, raw, i)?;
        if used > 0 {
            i += used;
            continue;
        }
        match arg.as_slice() {
            b"STOREDIST" if store => s.storedist = true,
            b"FROMMEMBER" if left >= 1 && !from_set => {
                if let Some(z) = z {
                    let score = z.score(&raw[i + 1]).ok_or_else(|| {
                        CommandError::err("could not decode requested zset member")
                    })?;
                    center = Some(geohash::position(score));
                }
                from_member = true;
                i += 1;
            }
            b"FROMLONLAT" if left >= 2 && !from_set => {
                center = Some(lon_lat(&raw[i + 1], &raw[i + 2])?);
                i += 2;
            }
            b"BYRADIUS" if left >= 2 && shape.is_none() => {
                shape = Some(radius(&raw[i + 1], &raw[i + 2])?);
                i += 2;
            }
            b"BYBOX" if left >= 3 && shape.is_none() => {
                let w = parse_score(&raw[i + 1])
                    .ok_or_else(|| CommandError::err("need numeric width"))?;
                let h = parse_score(&raw[i + 2])
                    .ok_or_else(|| CommandError::err("need numeric height"))?;
                if w < 0.0 || h < 0.0 {
                    return Err(CommandError::err("height or width cannot be negative"));
                }
                shape = Some((ShapeKind::Box(w, h), unit(&raw[i + 3])?));
                i += 3;
            }
            _ => return Err(CommandError::syntax()),
        }
        i += 1;
    }
    if store && (s.withdist || s.withhash || s.withcoord) {
        return Err(CommandError::err(
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ));
    }
    if center.is_none() && !from_member {
        return Err(CommandError::err(&format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    let Some((kind, to_meters)) = shape else {
        return Err(CommandError::err(&format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    };
    if s.any && s.count == 0 {
        return Err(CommandError::err(
            "the ANY argument requires COUNT argument",
        ));
    }
    let Some(center) = center else {
        return Ok(None);
    };
    if z.is_none() {
        return Ok(None);
    }
    s.shape = Shape {
        center,
        to_meters,
        kind,
    };
    Ok(Some(s.finish()))
}

/// The points of `z` within the search's shape, in the order Redis returns them.
fn run_search<'z>(z: &'z Zset, s: &Search) -> Vec<Found<'z>> {
    let limit = if s.any { s.count } else { 0 };
    let mut found = Vec::new();
    'boxes: for b in geohash::search_boxes(&s.shape) {
        if limit != 0 && found.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(b);
        let lo = z.count_while(|score, _| score < min);
        let hi = z.count_while(|score, _| score < max);
        if hi <= lo {
            continue;
        }
        for (member, score) in z.iter_from(lo, false).take(hi - lo) {
            let (lon, lat) = geohash::position(score);
            if let Some(d) = s.shape.contains(lon, lat) {
                found.push(Found {
                    member,
                    dist: d / s.shape.to_meters,
                    score,
                    lon,
                    lat,
                });
                if limit != 0 && found.len() >= limit {
                    break 'boxes;
                }
            }
        }
    }
    match s.sort {
        Sort::None => {}
        Sort::Asc => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
    }
    if s.count != 0 {
        found.truncate(s.count);
    }
    found
}

fn search_reply(found: Vec<Found<'_>>, s: &Search) -> Frame {
    let plain = !(s.withdist || s.withhash || s.withcoord);
    Frame::Array(
        found
            .into_iter()
            .map(|f| {
                let member = Frame::Bulk(Bytes::copy_from_slice(f.member));
                if plain {
                    return member;
                }
                let mut item = vec![member];
                if s.withdist {
                    item.push(distance_reply(f.dist));
                }
                if s.withhash {
                    item.push(Frame::Integer(f.score as i64));
                }
                if s.withcoord {
                    item.push(coordinates(f.lon, f.lat));
                }
                Frame::Array(item)
            })
            .collect(),
    )
}

#[derive(Debug)]
pub struct GeoSearch(Bytes, Vec<Bytes>);

impl Command for GeoSearch {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GeoSearch(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let z = get_zset(t, &self.0)?;
            let Some(s) = parse_search(z, &self.1, "GEOSEARCH", false)? else {
                return Ok(Frame::Array(Vec::new()));
            };
            let z = z.expect("a search has a set");
            Ok(search_reply(run_search(z, &s), &s))
        })?
    }
}

#[derive(Debug)]
pub struct GeoSearchStore(Bytes, Bytes, Vec<Bytes>);

impl Command for GeoSearchStore {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GeoSearchStore(
            args.next_bytes()?,
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let GeoSearchStore(dst, src, raw) = &self;
        cx.write([&dst[..], &src[..]], |t| {
            let items: Vec<(SmallBytes, f64)> = {
                let z = get_zset(t, src)?;
                match parse_search(z, raw, "GEOSEARCHSTORE", true)? {
                    None => Vec::new(),
                    Some(s) => run_search(z.expect("a search has a set"), &s)
                        .into_iter()
                        .map(|f| {
                            let score = if s.storedist { f.dist } else { f.score };
                            (SmallBytes::new(f.member), score)
                        })
                        .collect(),
                }
            };
            store(state, t, dst, items)
        })?
    }
}

/// What a GEORADIUS call comes to: a reply, or results to store at a key (the STORE and
/// STOREDIST options), or a store key to remove (no source set).
enum Outcome {
    Reply(Frame),
    Store(Bytes, Vec<(SmallBytes, f64)>),
    Delete(Bytes),
}

/// GEORADIUS (`KIND` 0), GEORADIUS_RO (1), GEORADIUSBYMEMBER (2), GEORADIUSBYMEMBER_RO (3):
/// the older spellings of GEOSEARCH (a circle around a position or a member), able to store.
#[derive(Debug)]
pub struct GeoRadius<const KIND: u8> {
    key: Bytes,
    /// `lon lat radius unit`, or `member radius unit`.
    fixed: Vec<Bytes>,
    raw: Vec<Bytes>,
    /// The key a STORE or STOREDIST option names (the last one), locked with the source.
    store: Option<Bytes>,
}

impl<const KIND: u8> GeoRadius<KIND> {
    const BY_MEMBER: bool = KIND >= 2;
    const READ_ONLY: bool = KIND % 2 == 1;

    fn run(&self, z: Option<&Zset>) -> Result<Outcome, CommandError> {
        let mut s = Search::new();
        let f = &self.fixed;
        let center = if !Self::BY_MEMBER {
            let center = lon_lat(&f[0], &f[1])?;
            (s.shape.kind, s.shape.to_meters) = radius(&f[2], &f[3])?;
            Some(center)
        } else if let Some(z) = z {
            let score = z
                .score(&f[0])
                .ok_or_else(|| CommandError::err("could not decode requested zset member"))?;
            (s.shape.kind, s.shape.to_meters) = radius(&f[1], &f[2])?;
            Some(geohash::position(score))
        } else {
            // No source set: the options are still read, for the reply's shape.
            None
        };
        let raw = &self.raw;
        let mut store = None;
        let mut i = 0;
        while i < raw.len() {
            let used = shared_option(&mut s, raw, i)?;
            if used > 0 {
                i += used;
                continue;
            }
            let left = raw.len() - i - 1;
            let arg = raw[i].to_ascii_uppercase();
            match arg.as_slice() {
                b"STORE" | b"STOREDIST" if left >= 1 && !Self::READ_ONLY => {
                    store = Some(raw[i + 1].clone());
                    s.storedist = arg.as_slice() == b"STOREDIST";
                    i += 2;
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        if store.is_some() && (s.withdist || s.withhash || s.withcoord) {
            return Err(CommandError::err(
                "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and \
                 WITHCOORD options",
            ));
        }
        if s.any && s.count == 0 {
            return Err(CommandError::err(
                "the ANY argument requires COUNT argument",
            ));
        }
        let (Some(z), Some(center)) = (z, center) else {
            return Ok(match store {
                Some(dst) => Outcome::Delete(dst),
                None => Outcome::Reply(Frame::Array(Vec::new())),
            });
        };
        s.shape.center = center;
        let s = s.finish();
        let found = run_search(z, &s);
        Ok(match store {
            None => Outcome::Reply(search_reply(found, &s)),
            Some(dst) => Outcome::Store(
                dst,
                found
                    .into_iter()
                    .map(|f| {
                        let score = if s.storedist { f.dist } else { f.score };
                        (SmallBytes::new(f.member), score)
                    })
                    .collect(),
            ),
        })
    }
}

impl<const KIND: u8> Command for GeoRadius<KIND> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let fixed = (0..if Self::BY_MEMBER { 3 } else { 4 })
            .map(|_| args.next_bytes())
            .collect::<Result<Vec<_>, _>>()?;
        let raw: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        // The store key, found the way the options are read (COUNT takes one argument).
        let mut store = None;
        let mut i = 0;
        while i < raw.len() {
            let has_next = i + 1 < raw.len();
            let arg = raw[i].to_ascii_uppercase();
            match arg.as_slice() {
                b"COUNT" if has_next => i += 1,
                b"STORE" | b"STOREDIST" if has_next && !Self::READ_ONLY => {
                    store = Some(raw[i + 1].clone());
                    i += 1;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(GeoRadius {
            key,
            fixed,
            raw,
            store,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let Some(dst) = self.store.clone() else {
            return cx.read([&self.key[..]], |t| {
                match self.run(get_zset(t, &self.key)?)? {
                    Outcome::Reply(frame) => Ok(frame),
                    // Without a store key the outcome is always a reply.
                    Outcome::Store(..) | Outcome::Delete(_) => Ok(Frame::Array(Vec::new())),
                }
            })?;
        };
        let state = cx.state;
        cx.write([&self.key[..], &dst[..]], |t| {
            let outcome = self.run(get_zset(t, &self.key)?)?;
            match outcome {
                Outcome::Reply(frame) => Ok(frame),
                Outcome::Store(dst, items) => store(state, t, &dst, items),
                Outcome::Delete(dst) => {
                    t.delete(&dst);
                    Ok(Frame::Integer(0))
                }
            }
        })?
    }
}

// The family's rows, copied from Redis 7.0's command metadata.
super::command_table! {
    pub(super) GEO;
    "geoadd" -5 GeoAdd {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("geo", "3.2.0", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", "Add one or more geospatial items in the geospatial index represented using a sorted set"),
    }
    "geopos" -2 GeoPos {
        flags: f::READONLY,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("geo", "3.2.0", "O(N) where N is the number of members requested.", "Returns longitude and latitude of members of a geospatial index"),
    }
    "geodist" -4 GeoDist {
        flags: f::READONLY,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("geo", "3.2.0", "O(log(N))", "Returns the distance between two members of a geospatial index"),
    }
    "geohash" -2 GeoHash {
        flags: f::READONLY,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("geo", "3.2.0", "O(log(N)) for each member requested, where N is the number of elements in the sorted set.", "Returns members of a geospatial index as standard geohash strings"),
    }
    "geosearch" -7 GeoSearch {
        flags: f::READONLY,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("geo", "6.2.0", "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle."),
    }
    "geosearchstore" -8 GeoSearchStore {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::range(ks::RO | ks::ACCESS, 2, 0, 1)],
        doc: Doc::new("geo", "6.2.0", "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key."),
    }
    "georadius" -6 GeoRadius<0> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1), KeySpec::keyword(ks::OW | ks::UPDATE, "STORE", 6), KeySpec::keyword(ks::OW | ks::UPDATE, "STOREDIST", 6)],
        doc: Doc::new("geo", "3.2.0", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point"),
    }
    "georadius_ro" -6 GeoRadius<1> {
        flags: f::READONLY,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("geo", "3.2.10", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "A read-only variant for GEORADIUS"),
    }
    "georadiusbymember" -5 GeoRadius<2> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1), KeySpec::keyword(ks::OW | ks::UPDATE, "STORE", 5), KeySpec::keyword(ks::OW | ks::UPDATE, "STOREDIST", 5)],
        doc: Doc::new("geo", "3.2.0", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member"),
    }
    "georadiusbymember_ro" -5 GeoRadius<3> {
        flags: f::READONLY,
        acl: acl::GEO,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("geo", "3.2.10", "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.", "A read-only variant for GEORADIUSBYMEMBER"),
    }
}
