"""redis-py against Lethe, unchanged: strings, TTLs, hashes, transactions, pub/sub, SCAN,
introspection and Lethe's own commands, in RESP2 and RESP3. Exits non-zero on any mismatch.
Usage: python3 redis_py_smoke.py PORT"""
import sys

import redis

port = int(sys.argv[1])
for proto in (2, 3):
    r = redis.Redis(port=port, protocol=proto, decode_responses=True)
    r.flushall()
    assert r.ping() is True
    assert r.set("a", "1", ex=100) is True
    assert r.get("a") == "1"
    assert r.incr("a") == 2
    assert 0 < r.ttl("a") <= 100
    assert r.hset("h", mapping={"f": "v", "g": "w"}) == 2
    assert r.hgetall("h") == {"f": "v", "g": "w"}
    p = r.pipeline(transaction=True)
    p.set("b", 2)
    p.get("b")
    assert p.execute() == [True, "2"]
    assert sorted(r.scan_iter(match="*")) == ["a", "b", "h"]
    assert r.dbsize() == 3
    assert r.info("server")["redis_version"].startswith("7.")
    assert r.command_count() > 50
    assert r.execute_command("LETHE.SET", "x", "y", "TAGS", 1, "team:1") == "OK"
    assert r.execute_command("LETHE.INVALIDATE", "TAG", "team") == 1
    assert r.get("x") is None
    ps = r.pubsub()
    ps.subscribe("ch")
    assert ps.get_message(timeout=2)["type"] == "subscribe"
    assert r.publish("ch", "hi") == 1
    msg = ps.get_message(timeout=2)
    assert msg["type"] == "message" and msg["data"] == "hi", msg
    ps.close()
    try:
        r.execute_command("NOSUCHCOMMAND")
        raise AssertionError("unknown command accepted")
    except redis.ResponseError as e:
        assert "unknown command" in str(e)
print("ok")
