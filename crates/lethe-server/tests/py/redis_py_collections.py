"""redis-py against Lethe, unchanged: the classic tag pattern (SETEX the value, SADD its key to
the tag's set, later SMEMBERS + DEL), sets, lists and a blocking pop woken by another client,
in RESP2 and RESP3. Exits non-zero on any mismatch.
Usage: python3 redis_py_collections.py PORT"""
import sys
import threading

import redis

port = int(sys.argv[1])
for proto in (2, 3):
    r = redis.Redis(port=port, protocol=proto, decode_responses=True)
    r.flushall()

    # The tag pattern, exactly as applications write it against Redis.
    def cache(key, value, tags):
        p = r.pipeline(transaction=False)
        p.setex(key, 300, value)
        for tag in tags:
            p.sadd(f"tag:{tag}", key)
        p.execute()

    def invalidate(tag):
        keys = r.smembers(f"tag:{tag}")
        return r.delete(f"tag:{tag}", *keys) if keys else 0

    cache("user:1:profile", "alice", ["user:1"])
    cache("user:1:posts", "[1,2]", ["user:1", "posts"])
    cache("user:2:profile", "bob", ["user:2"])
    assert r.smembers("tag:user:1") == {"user:1:profile", "user:1:posts"}
    assert r.get("user:1:profile") == "alice"
    assert invalidate("user:1") == 3
    assert r.get("user:1:profile") is None and r.get("user:1:posts") is None
    assert r.get("user:2:profile") == "bob"
    assert r.smembers("tag:posts") == {"user:1:posts"}
    assert r.exists("tag:user:1") == 0

    # Sets.
    assert r.sadd("s", *range(1000)) == 1000
    assert r.scard("s") == 1000
    assert r.sismember("s", "999") and not r.sismember("s", "1000")
    assert r.smismember("s", ["1", "x"]) == [1, 0] or r.smismember("s", ["1", "x"]) == [True, False]
    assert set(r.sscan_iter("s", count=37)) == {str(i) for i in range(1000)}
    assert r.sadd("t", "1", "2", "x") == 3
    assert r.sinter("s", "t") == {"1", "2"}
    assert r.sintercard(2, ["s", "t"]) == 2
    assert r.sunionstore("u", ["s", "t"]) == 1001
    assert r.smove("t", "s", "x") is True
    assert len(r.spop("t", 5)) == 2 and r.exists("t") == 0
    assert r.srandmember("s") in {str(i) for i in range(1000)} | {"x"}

    # Lists.
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == ["z", "a", "b", "c"]
    assert r.lpos("l", "b") == 2
    assert r.lmove("l", "m", "RIGHT", "LEFT") == "c"
    assert r.lmpop(2, "nokey", "l", direction="LEFT", count=2) == ["l", ["z", "a"]]
    assert r.blpop(["empty"], timeout=0.05) is None

    # A blocking pop, woken by another client's push.
    got = {}

    def waiter():
        w = redis.Redis(port=port, protocol=proto, decode_responses=True)
        got["v"] = w.brpop(["q"], timeout=10)

    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(500):
        if r.info("clients")["blocked_clients"] == 1:
            break
        threading.Event().wait(0.01)
    assert r.rpush("q", "job") == 1
    t.join(15)
    assert got.get("v") in (["q", "job"], ("q", "job")), got
    assert r.exists("q") == 0
print("ok")
