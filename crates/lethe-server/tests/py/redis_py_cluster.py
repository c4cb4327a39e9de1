"""redis-py's RedisCluster against three Lethe nodes, unchanged, in RESP2 and RESP3: 10,000
keys written and read back through the cluster client, each node holding about a third, hash
tags kept together, a cross-slot MGET refused by the server. Exits non-zero on any mismatch.
Usage: python3 redis_py_cluster.py PORT (any one node's)"""
import sys

import redis
from redis.cluster import RedisCluster

port = int(sys.argv[1])
N = 10_000
for proto in (2, 3):
    rc = RedisCluster(host="127.0.0.1", port=port, protocol=proto, decode_responses=True)
    masters = rc.get_primaries()
    assert len(masters) == 3, masters
    for node in masters:
        rc.flushdb(target_nodes=node)
    pipe = rc.pipeline()
    for i in range(N):
        pipe.set(f"key:{i}", f"v{proto}-{i}")
    assert all(pipe.execute())
    for i in range(0, N, 7):
        assert rc.get(f"key:{i}") == f"v{proto}-{i}", i
    pipe = rc.pipeline()
    for i in range(N):
        pipe.get(f"key:{i}")
    assert pipe.execute() == [f"v{proto}-{i}" for i in range(N)]
    sizes = [rc.dbsize(target_nodes=node) for node in masters]
    assert sum(sizes) == N, sizes
    for s in sizes:
        assert N * 0.28 < s < N * 0.39, sizes
    # Hash tags keep keys together: a multi-key command on them runs on one node.
    assert rc.mset({"{user:1}:a": "1", "{user:1}:b": "2"}) is True
    assert rc.mget("{user:1}:a", "{user:1}:b") == ["1", "2"]
    # Sent to one node as is, keys of two slots are refused with Redis Cluster's error.
    node = rc.get_node_from_key("{user:1}:a")
    try:
        rc.execute_command("MGET", "{user:1}:a", "other", target_nodes=node)
        raise AssertionError("cross-slot MGET accepted")
    except redis.exceptions.ClusterCrossSlotError as e:
        # redis-py maps the CROSSSLOT code to this error and keeps the message.
        assert str(e) == "Keys in request don't hash to the same slot", e
    assert rc.keyslot("foo") == 12182
    assert rc.cluster_keyslot("foo") == 12182
    rc.close()
print("ok")
