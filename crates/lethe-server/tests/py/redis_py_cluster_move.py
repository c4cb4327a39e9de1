"""redis-py's RedisCluster while slots move: writes keys, prints "ready", waits for "moved" on
stdin (the test has moved a node's slots to the others meanwhile), then reads every key through
the same client, which must follow MOVED: each is missing (its slot started empty on its new
node) or holds what was written, never anything else; fresh writes read back.
Usage: python3 redis_py_cluster_move.py PORT"""
import sys

from redis.cluster import RedisCluster

port = int(sys.argv[1])
N = 2000
rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
for i in range(N):
    rc.set(f"m:{i}", f"v{i}")
print("ready", flush=True)
assert sys.stdin.readline().strip() == "moved"
missing = 0
for i in range(N):
    v = rc.get(f"m:{i}")
    assert v is None or v == f"v{i}", (i, v)
    missing += v is None
assert missing > 0, "no key of the moved slots went"
for i in range(N):
    rc.set(f"m:{i}", f"w{i}")
for i in range(N):
    assert rc.get(f"m:{i}") == f"w{i}", i
# The client refreshed its slot table: b, serving nothing, is no longer among its primaries.
assert len(rc.get_primaries()) == 2, rc.get_primaries()
print("ok", missing, flush=True)
