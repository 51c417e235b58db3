"""S3-FIFO as the paper describes it (Yang et al., SOSP 2023, "FIFO queues are all you need for cache
eviction"), with the two choices Strata documents where the paper leaves room, in plain Python with exact FIFO
queues, for the policy cross-check: a small FIFO S of 5% of the capacity (Strata's share; the paper's is 10%),
a main FIFO M with 2-bit frequencies (FIFO-reinsertion), a ghost FIFO G of keys as long as M's share (95%).
Strata's choices: an entry read once while in S moves to M (the paper's text; its pseudo-code's `freq > 1`
and libCacheSim's default threshold of 2 ask for two reads), and a key G remembers stays in G when it is
inserted again.

* A miss inserts into M if G remembers the key, else into S; first, while the cache is
  full, one eviction: from S if S holds at least its 5%, else from M.
* Evicting from S takes S's oldest entry: read while in S (frequency above 0) moves it to M (frequency
  reset), else it is evicted and its key joins G; repeat until something is evicted.
* Evicting from M takes M's oldest: a frequency above 0 is lowered by one and the entry reinserted, else it
  is evicted.
* A hit raises the frequency by one, to at most 3.

libCacheSim's `S3FIFO` (the one its Python package exposes) differs in one documented way: once S is full
and the cache is not, new keys go to M. That changes which keys occupy M after the cache first fills, which
lasts as long as M is not churned. `fill_to_main=True` models that rule, to show it accounts for a difference.
"""
from collections import OrderedDict, deque


def miss_ratio(keys, capacity, fill_to_main=False):
    small_share = max(capacity // 20, 1)
    ghost_len = capacity - small_share
    small, main, ghost = deque(), deque(), OrderedDict()
    freq = {}
    hits = 0

    def evict_small():
        while small:
            key = small.popleft()
            if freq[key] > 0:
                freq[key] = 0
                main.append(key)
            else:
                del freq[key]
                ghost[key] = None
                if len(ghost) > ghost_len:
                    ghost.popitem(last=False)
                return

    def evict_main():
        while main:
            key = main.popleft()
            if freq[key] > 0:
                freq[key] -= 1
                main.append(key)
            else:
                del freq[key]
                return

    for key in keys:
        if key in freq:
            hits += 1
            if freq[key] < 3:
                freq[key] += 1
            continue
        if len(small) + len(main) >= capacity:
            if len(small) >= small_share:
                evict_small()
            else:
                evict_main()
        freq[key] = 0
        filling = len(small) + len(main) < capacity
        if key in ghost or (fill_to_main and filling and len(small) >= small_share):
            main.append(key)
        else:
            small.append(key)
    return 1.0 - hits / max(len(keys), 1)
