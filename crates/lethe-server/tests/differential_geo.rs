//! Differential tests of the GEO commands: the same scripts against a real Redis 7.0 and
//! against Lethe, raw replies compared byte for byte, in RESP2 and in RESP3. Scores (the
//! geohashes), coordinates, distances and the order of unsorted search results all come from
//! the same arithmetic, so they are compared exactly.

mod common;

use common::{Client, Lethe, Redis};

fn run_both(r: &mut Client, l: &mut Client, script: &[Vec<String>]) {
    for (i, cmd) in script.iter().enumerate() {
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let want = r.raw(&cmd);
        let got = l.raw(&cmd);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "command #{i} {cmd:?}: Lethe's reply differs from Redis's"
        );
    }
}

/// Runs `script` on both servers from an empty keyspace, once in RESP2 and once in RESP3.
fn compare_owned(script: &[Vec<String>]) {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    for proto in ["2", "3"] {
        let mut r = redis.client();
        let mut l = lethe.client();
        let (hr, hl) = (r.raw(&["HELLO", proto]), l.raw(&["HELLO", proto]));
        assert_eq!(hr[..1], hl[..1]);
        assert_eq!(r.raw(&["FLUSHALL"]), l.raw(&["FLUSHALL"]));
        run_both(&mut r, &mut l, script);
    }
}

fn line(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn compare(script: &[&[&str]]) {
    compare_owned(&script.iter().map(|c| line(c)).collect::<Vec<_>>());
}

const CITIES: &[&str] = &[
    "GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania",
    "12.496365", "41.902782", "Rome", "9.189982", "45.464204", "Milan", "2.352222", "48.856613",
    "Paris", "-0.127758", "51.507351", "London", "-73.935242", "40.730610", "NewYork",
    "139.691711", "35.689487", "Tokyo", "151.209290", "-33.868820", "Sydney", "-58.381592",
    "-34.603722", "BuenosAires", "179.9", "0.5", "DateLineEast", "-179.9", "0.5",
    "DateLineWest", "0", "85", "North", "0", "-85", "South",
];

#[test]
fn positions_distances_and_hashes_match() {
    compare(&[
        CITIES,
        &["GEOADD", "g", "13.361389", "38.115556", "Palermo"],
        &["GEOADD", "g", "CH", "13.4", "38.1", "Palermo", "1", "1", "Nowhere"],
        &["GEOADD", "g", "NX", "0", "0", "Palermo", "2", "2", "Elsewhere"],
        &["GEOADD", "g", "XX", "CH", "3", "3", "Elsewhere", "4", "4", "NotAdded"],
        &["GEOADD", "g", "nx", "xx", "1", "1", "x"],
        &["GEOADD", "g", "1", "1", "x", "2"],
        &["GEOADD", "g", "CH", "1", "1"],
        &["GEOADD", "g", "181", "1", "x"],
        &["GEOADD", "g", "1", "85.06", "x"],
        &["GEOADD", "g", "-180.0001", "-85.06", "x"],
        &["GEOADD", "g", "x", "1", "y"],
        &["GEOADD", "g", "1", "nan", "y"],
        &["ZRANGE", "g", "0", "-1", "WITHSCORES"],
        &["GEOPOS", "g", "Palermo", "nosuch", "Tokyo", "North", "South", "DateLineWest"],
        &["GEOPOS", "nokey", "a", "b"],
        &["GEOPOS", "g"],
        &["GEODIST", "g", "Palermo", "Catania"],
        &["GEODIST", "g", "Palermo", "Catania", "km"],
        &["GEODIST", "g", "Palermo", "Catania", "MI"],
        &["GEODIST", "g", "Palermo", "Catania", "ft"],
        &["GEODIST", "g", "Palermo", "Catania", "M"],
        &["GEODIST", "g", "Paris", "Tokyo", "km"],
        &["GEODIST", "g", "DateLineEast", "DateLineWest"],
        &["GEODIST", "g", "North", "South", "km"],
        &["GEODIST", "g", "Palermo", "Palermo"],
        &["GEODIST", "g", "Palermo", "nosuch"],
        &["GEODIST", "nokey", "a", "b"],
        &["GEODIST", "g", "Palermo", "Catania", "yards"],
        &["GEODIST", "g", "Palermo", "Catania", "km", "x"],
        &["GEOHASH", "g", "Palermo", "Catania", "nosuch", "Sydney", "North", "DateLineWest"],
        &["GEOHASH", "nokey", "a", "b"],
        &["GEOHASH", "g"],
        &["SET", "str", "v"],
        &["GEOADD", "str", "1", "1", "x"],
        &["GEOPOS", "str", "x"],
        &["GEODIST", "str", "x", "y"],
        &["GEOHASH", "str", "x"],
        &["TYPE", "g"],
        &["ZADD", "z", "0", "zero", "4503599627370495", "max", "-1", "neg"],
        &["GEOPOS", "z", "zero", "max"],
        &["GEOHASH", "z", "zero", "max"],
    ]);
}

#[test]
fn searches_match() {
    compare(&[
        CITIES,
        &["GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"],
        &["GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "DESC", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "2000", "km", "WITHCOORD", "WITHDIST", "WITHHASH"],
        &["GEOSEARCH", "g", "FROMLONLAT", "10", "45", "BYRADIUS", "1500", "km", "COUNT", "3"],
        &["GEOSEARCH", "g", "FROMLONLAT", "10", "45", "BYRADIUS", "1500", "km", "COUNT", "3", "DESC"],
        &["GEOSEARCH", "g", "FROMLONLAT", "10", "45", "BYRADIUS", "1500", "km", "COUNT", "2", "ANY"],
        &["GEOSEARCH", "g", "FROMLONLAT", "10", "45", "BYRADIUS", "1500", "km", "COUNT", "100"],
        &["GEOSEARCH", "g", "FROMMEMBER", "Rome", "BYRADIUS", "500", "mi", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMMEMBER", "Rome", "BYBOX", "2000", "1000", "km", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMMEMBER", "Paris", "BYBOX", "700", "700", "km", "ASC", "WITHCOORD"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "20000", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "20000", "km", "ASC", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "40000", "20000", "km", "DESC"],
        &["GEOSEARCH", "g", "FROMLONLAT", "180", "0", "BYRADIUS", "100", "km", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMLONLAT", "-180", "0.5", "BYRADIUS", "50", "km", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "84", "BYRADIUS", "200", "km", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "-84.9", "BYBOX", "100", "100", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "13.361389", "38.115556", "BYRADIUS", "0", "m"],
        &["GEOSEARCH", "g", "FROMLONLAT", "13.361389", "38.115556", "BYRADIUS", "1", "m", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "0", "km", "WITHDIST"],
        &["GEOSEARCH", "g", "FROMMEMBER", "nosuch", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "nokey", "FROMMEMBER", "nosuch", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "FROMMEMBER", "Rome"],
        &["GEOSEARCH", "g", "FROMMEMBER", "Rome", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "BYBOX", "1", "1", "km"],
        &["GEOSEARCH", "g", "BYRADIUS", "10", "km", "ASC", "COUNT", "1"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "ASC", "COUNT", "1"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "ANY"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "COUNT", "0"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "COUNT", "-1"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "COUNT", "x"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "COUNT"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "-1", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "x", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "parsecs"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "-1", "1", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "x", "1", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1", "x", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "1", "1"],
        &["GEOSEARCH", "g", "FROMLONLAT", "200", "0", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "x", "0", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "STOREDIST"],
        &["GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km", "FOO"],
        &["SET", "str", "v"],
        &["GEOSEARCH", "str", "FROMLONLAT", "0", "0", "BYRADIUS", "10", "km"],
        &["GEOSEARCH", "str", "FOO"],
        &["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "10", "45", "BYRADIUS", "1500", "km", "COUNT", "2", "DESC", "STOREDIST"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["OBJECT", "ENCODING", "dst"],
        &["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"],
        &["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
        &["EXISTS", "dst"],
        &["SET", "dst", "v"],
        &["GEOSEARCHSTORE", "dst", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
        &["EXISTS", "dst"],
        &["GEOSEARCHSTORE", "dst", "str", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
        &["GEOSEARCHSTORE", "dst", "g", "BYRADIUS", "1", "km"],
        &["COMMAND", "GETKEYS", "geosearchstore", "d", "s", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
    ]);
}

/// A dense grid of points, searched around many centers and radiuses: every result list,
/// unsorted, must be Redis's (the same boxes scanned in the same order).
#[test]
fn dense_grid_searches_match_in_redis_order() {
    let mut add = line(&["GEOADD", "grid"]);
    for i in 0..40 {
        for j in 0..40 {
            let lon = -20.0 + f64::from(i) * 0.37;
            let lat = 30.0 + f64::from(j) * 0.29;
            add.push(format!("{lon:.5}"));
            add.push(format!("{lat:.5}"));
            add.push(format!("p{i}:{j}"));
        }
    }
    let mut script = vec![add, line(&["OBJECT", "ENCODING", "grid"])];
    for (lon, lat) in [(-15.5, 33.1), (-10.0, 36.0), (-5.3, 40.9), (-19.9, 30.1)] {
        for radius in ["1", "15", "40", "120", "600"] {
            let (lon, lat) = (lon.to_string(), lat.to_string());
            script.push(line(&[
                "GEOSEARCH", "grid", "FROMLONLAT", &lon, &lat, "BYRADIUS", radius, "km",
            ]));
            script.push(line(&[
                "GEOSEARCH", "grid", "FROMLONLAT", &lon, &lat, "BYBOX", radius, "30", "km",
                "WITHDIST",
            ]));
            script.push(line(&[
                "GEOSEARCH", "grid", "FROMLONLAT", &lon, &lat, "BYRADIUS", radius, "km",
                "COUNT", "5", "ANY",
            ]));
            script.push(line(&[
                "GEOSEARCH", "grid", "FROMLONLAT", &lon, &lat, "BYRADIUS", radius, "km",
                "COUNT", "7", "WITHDIST", "WITHHASH",
            ]));
        }
    }
    compare_owned(&script);
}
