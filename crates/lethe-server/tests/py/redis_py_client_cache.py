"""redis-py's own client-side cache (RESP3 `cache_config`) against Lethe.

redis-py enables it only for servers that report themselves as Redis 7.4 or later. The script
proves each value is served from client memory (it plants a marker in redis-py's cache and reads
it back), then that the cached copy is dropped when the key changes by each of Lethe's ways:
a SET from another client, `LETHE.INVALIDATE TAG`, a dependency cascade and, when a PostgreSQL
change is requested from the test driving this script, a change-capture invalidation.

Usage: redis_py_client_cache.py PORT [cdc]. With `cdc`, the script prints `UPDATE product:1`
and waits for a line on stdin once the driver has committed the row's update.
"""

import sys
import time

import redis
from redis.cache import CacheConfig, CacheKey

port = int(sys.argv[1])
with_cdc = len(sys.argv) > 2 and sys.argv[2] == "cdc"

cached = redis.Redis(port=port, protocol=3, cache_config=CacheConfig(), decode_responses=True)
other = redis.Redis(port=port, decode_responses=True)
cache = cached.get_cache()
MARKER = "served-from-client-memory"


def key_of(key):
    return CacheKey(command="GET", redis_keys=(key,), redis_args=("GET", key))


def plant_marker(key):
    """Reads `key` once (from the server), then replaces the cached reply with a marker: a read
    that returns the marker cannot have come from the server."""
    cached.get(key)
    entry = cache.get(key_of(key))
    assert entry is not None, f"redis-py did not cache GET {key}"
    entry.cache_value = MARKER
    got = cached.get(key)
    assert got == MARKER, f"GET {key} went to the server ({got!r}) instead of client memory"


def dropped(key, want, what):
    """Reads `key` until the cached copy is gone (bounded): the server's invalidation push must
    reach redis-py and remove the entry, after which the read returns the server's value."""
    deadline = time.monotonic() + 5
    while True:
        got = cached.get(key)
        if got != MARKER:
            assert got == want, f"after {what}: GET {key} gave {got!r}, want {want!r}"
            return
        assert time.monotonic() < deadline, f"after {what}: {key} still served from client memory"
        time.sleep(0.01)


# 1. A plain SET from another client.
other.set("plain", "v1")
plant_marker("plain")
other.set("plain", "v2")
dropped("plain", "v2", "SET from another client")

# 2. A tag invalidation: the value is tagged when stored and read with a plain GET.
other.execute_command("LETHE.SET", "profile:42", "Ada", "TAGS", 1, "user:42")
plant_marker("profile:42")
assert other.execute_command("LETHE.INVALIDATE", "TAG", "user:42") == 1
dropped("profile:42", None, "LETHE.INVALIDATE TAG")

# 3. A dependency cascade: the page depends on the profile; removing the profile drops the page.
other.set("profile:7", "Grace")
other.execute_command("LETHE.SET", "page:/u/7", "<h1>Grace</h1>", "DEPENDS", 1, "profile:7")
plant_marker("page:/u/7")
other.delete("profile:7")
dropped("page:/u/7", None, "a dependency cascade")

# 4. A change captured from PostgreSQL.
if with_cdc:
    other.set("product:1", "lamp")
    plant_marker("product:1")
    print("UPDATE product:1", flush=True)
    assert sys.stdin.readline().strip() == "done"
    dropped("product:1", None, "a change-capture invalidation")

# Nothing else was dropped: an untouched key is still served from memory.
other.set("untouched", "u")
plant_marker("untouched")
assert cached.get("untouched") == MARKER
print("ok", flush=True)
