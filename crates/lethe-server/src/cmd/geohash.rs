//! The geohash arithmetic under the GEO commands, as Redis 7.0 defines it, so that scores,
//! coordinates, distances and search results are the same bits as Redis's.
//!
//! A position is stored as a sorted set score: a 52-bit geohash (26 steps of longitude and
//! latitude halvings, latitude bits at even positions, longitude at odd ones) over longitudes
//! -180..180 and latitudes -85.05112878..85.05112878 (the Web Mercator limits), as an integer
//! valued double. Searches look at the geohash box holding the center at a step chosen from the
//! radius plus its eight neighbours, each a score range, and keep the points within the shape.
//! The constants below are Redis's (`geohash.h`, `geohash_helper.c`), the formulas rewritten
//! from their definitions.

/// Longitude and latitude limits of an encodable position (Redis's `GEO_*_MIN/MAX`).
pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// Steps of a stored geohash (52 bits).
pub const STEP_MAX: u32 = 26;
/// Earth's radius as Redis takes it, in meters (`EARTH_RADIUS_IN_METERS`).
pub const EARTH_RADIUS: f64 = 6372797.560856;
/// Half the Mercator projection's width, in meters (`MERCATOR_MAX`).
const MERCATOR_MAX: f64 = 20037726.37;

/// A geohash of `step` steps (2 * step bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Hash {
    pub bits: u64,
    pub step: u32,
}

impl Hash {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A decoded box: longitude and latitude ranges.
#[derive(Clone, Copy, Debug)]
pub struct Area {
    pub lon: (f64, f64),
    pub lat: (f64, f64),
}

/// Spreads the 32 bits of `v` to the even bit positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// The even bits of `x`, packed.
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// Encodes a position over the given latitude range (`LAT_MIN..LAT_MAX` for scores, -90..90
/// for GEOHASH's strings); `None` outside the ranges.
pub fn encode_in(lon: f64, lat: f64, lat_range: (f64, f64), step: u32) -> Option<Hash> {
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(lat_range.0..=lat_range.1).contains(&lat) {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * scale;
    let lon_off = (lon - LON_MIN) / (LON_MAX - LON_MIN) * scale;
    Some(Hash {
        bits: spread(lat_off as u32) | (spread(lon_off as u32) << 1),
        step,
    })
}

/// Encodes a position over the score ranges.
pub fn encode(lon: f64, lat: f64, step: u32) -> Option<Hash> {
    encode_in(lon, lat, (LAT_MIN, LAT_MAX), step)
}

/// The box a hash stands for (over the score ranges).
pub fn decode(hash: Hash) -> Area {
    let lat_cell = squash(hash.bits);
    let lon_cell = squash(hash.bits >> 1);
    let scale = (1u64 << hash.step) as f64;
    let lat_span = LAT_MAX - LAT_MIN;
    let lon_span = LON_MAX - LON_MIN;
    Area {
        lat: (
            LAT_MIN + (f64::from(lat_cell) / scale) * lat_span,
            LAT_MIN + ((f64::from(lat_cell) + 1.0) / scale) * lat_span,
        ),
        lon: (
            LON_MIN + (f64::from(lon_cell) / scale) * lon_span,
            LON_MIN + ((f64::from(lon_cell) + 1.0) / scale) * lon_span,
        ),
    }
}

/// The position a stored score stands for: its box's center, within the limits.
pub fn position(score: f64) -> (f64, f64) {
    let area = decode(Hash {
        bits: score as u64,
        step: STEP_MAX,
    });
    let lon = ((area.lon.0 + area.lon.1) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.0 + area.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

fn deg_rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn rad_deg(r: f64) -> f64 {
    r / (std::f64::consts::PI / 180.0)
}

/// Distance between two latitudes on one meridian, in meters.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Great-circle distance in meters (the haversine formula, as Redis computes it).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

/// What a search covers: a circle (radius) or a box (width, height), in the unit of
/// `to_meters`, around `center` (longitude, latitude).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub center: (f64, f64),
    pub to_meters: f64,
    pub kind: ShapeKind,
}

#[derive(Clone, Copy, Debug)]
pub enum ShapeKind {
    Radius(f64),
    Box(f64, f64),
}

impl Shape {
    /// The distance in meters from the center to `(lon, lat)` if the point is inside.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        let (clon, clat) = self.center;
        match self.kind {
            ShapeKind::Radius(r) => {
                let d = distance(clon, clat, lon, lat);
                (d <= r * self.to_meters).then_some(d)
            }
            ShapeKind::Box(w, h) => {
                // Redis 7.0 measures the east-west extent along the point's parallel and the
                // north-south one along its meridian (later versions changed both).
                let lon_d = distance(lon, lat, clon, lat);
                let lat_d = distance(lon, lat, lon, clat);
                if lon_d > w * self.to_meters / 2.0 || lat_d > h * self.to_meters / 2.0 {
                    return None;
                }
                Some(distance(clon, clat, lon, lat))
            }
        }
    }

    /// Longitude and latitude bounds: min lon, min lat, max lon, max lat.
    fn bounds(&self) -> [f64; 4] {
        let (lon, lat) = self.center;
        let (height, width) = match self.kind {
            ShapeKind::Radius(r) => (r * self.to_meters, r * self.to_meters),
            ShapeKind::Box(w, h) => (h / 2.0 * self.to_meters, w / 2.0 * self.to_meters),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS);
        let lon_delta_top = rad_deg(width / EARTH_RADIUS / deg_rad(lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(width / EARTH_RADIUS / deg_rad(lat - lat_delta).cos());
        // The hemispheres' widest latitudes are on opposite sides.
        let lon_delta = if lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        [
            lon - lon_delta,
            lat - lat_delta,
            lon + lon_delta,
            lat + lat_delta,
        ]
    }

    /// The radius in meters that covers the shape (a box's half diagonal).
    fn radius_meters(&self) -> f64 {
        let r = match self.kind {
            ShapeKind::Radius(r) => r,
            ShapeKind::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        };
        r * self.to_meters
    }
}

/// The step whose boxes are about the size of `meters` at `lat`.
fn steps_for_radius(meters: f64, lat: f64) -> u32 {
    if meters == 0.0 {
        return STEP_MAX;
    }
    let mut meters = meters;
    let mut step: i32 = 1;
    while meters < MERCATOR_MAX {
        meters *= 2.0;
        step += 1;
    }
    // Make sure the range is included in most of the base cases.
    step -= 2;
    // Boxes narrow towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u32
}

fn move_x(h: Hash, d: i8) -> Hash {
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - h.step * 2);
    let x = if d > 0 {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    let x = x & (0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step * 2));
    Hash {
        bits: x | y,
        step: h.step,
    }
}

fn move_y(h: Hash, d: i8) -> Hash {
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step * 2);
    let y = if d > 0 {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    let y = y & (0x5555_5555_5555_5555u64 >> (64 - h.step * 2));
    Hash {
        bits: x | y,
        step: h.step,
    }
}

/// The boxes to search, in Redis's order: the center's, north, south, east, west, north-east,
/// north-west, south-east, south-west; boxes that cannot hold a point of the shape are left
/// out, as are repeats of the box before (very large radiuses wrap around).
pub fn search_boxes(shape: &Shape) -> Vec<Hash> {
    let [min_lon, min_lat, max_lon, max_lat] = shape.bounds();
    let (lon, lat) = shape.center;
    let mut steps = steps_for_radius(shape.radius_meters(), lat);
    let around = |steps: u32| {
        let hash = encode(lon, lat, steps).unwrap_or_default();
        let hash = Hash {
            step: steps,
            ..hash
        };
        // north, south, east, west, north-east, north-west, south-east, south-west
        let n = [
            move_y(hash, 1),
            move_y(hash, -1),
            move_x(hash, 1),
            move_x(hash, -1),
            move_y(move_x(hash, 1), 1),
            move_y(move_x(hash, -1), 1),
            move_y(move_x(hash, 1), -1),
            move_y(move_x(hash, -1), -1),
        ];
        (hash, n)
    };
    let (mut hash, mut n) = around(steps);
    // Near a box's edge the step may be too fine for the neighbours to cover the shape.
    let too_fine = decode(n[0]).lat.1 < max_lat
        || decode(n[1]).lat.0 > min_lat
        || decode(n[2]).lon.1 < max_lon
        || decode(n[3]).lon.0 > min_lon;
    if steps > 1 && too_fine {
        steps -= 1;
        (hash, n) = around(steps);
    }
    let area = decode(hash);
    let zero = Hash::default();
    if steps >= 2 {
        if area.lat.0 < min_lat {
            n[1] = zero;
            n[7] = zero;
            n[6] = zero;
        }
        if area.lat.1 > max_lat {
            n[0] = zero;
            n[4] = zero;
            n[5] = zero;
        }
        if area.lon.0 < min_lon {
            n[3] = zero;
            n[7] = zero;
            n[5] = zero;
        }
        if area.lon.1 > max_lon {
            n[2] = zero;
            n[6] = zero;
            n[4] = zero;
        }
    }
    let mut boxes: Vec<Hash> = Vec::with_capacity(9);
    for h in std::iter::once(hash).chain(n) {
        if h.is_zero() || boxes.last() == Some(&h) {
            continue;
        }
        boxes.push(h);
    }
    boxes
}

/// The scores a box covers: `min..max` (max excluded).
pub fn score_range(h: Hash) -> (f64, f64) {
    let shift = 52 - h.step * 2;
    ((h.bits << shift) as f64, ((h.bits + 1) << shift) as f64)
}

/// GEOHASH's 11-character string: the position re-encoded over latitudes -90..90.
pub fn hash_string(lon: f64, lat: f64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let bits = encode_in(lon, lat, (-90.0, 90.0), STEP_MAX).map_or(0, |h| h.bits);
    (0..11)
        .map(|i| {
            // The 11th character would need 55 bits; Redis writes 0 there.
            let idx = if i == 10 {
                0
            } else {
                ((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize
            };
            ALPHABET[idx] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_encode_and_decode_as_in_redis() {
        // GEOADD g 13.361389 38.115556 Palermo: Redis stores 3479099956230698.
        let h = encode(13.361389, 38.115556, STEP_MAX).unwrap();
        assert_eq!(h.bits, 3479099956230698);
        let (lon, lat) = position(h.bits as f64);
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(hash_string(lon, lat), "sqc8b49rny0");
        assert!(encode(181.0, 0.0, STEP_MAX).is_none());
        assert!(encode(0.0, 86.0, STEP_MAX).is_none());
        for v in [0u32, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(squash(spread(v)), v);
        }
    }
}
