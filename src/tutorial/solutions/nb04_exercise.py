# Solution to notebook 04's exercise: predict how many replays a sequence of workflow tasks causes.
def predict_replays(sequence: str, cache_size: int) -> int:
    """One workflow task per letter, in order; the first time a letter appears its workflow starts.
    The worker's cache holds `cache_size` workflows and, when full, evicts the least recently used one.
    A task for a workflow that was seen before but is no longer in the cache replays its history."""
    cache: list[str] = []  # least recently used first
    seen: set[str] = set()
    replays = 0
    for name in sequence:
        if name in cache:
            cache.remove(name)  # a hit: it becomes the most recently used
        else:
            if name in seen:
                replays += 1  # evicted earlier: rebuild it from the history
            seen.add(name)
            if len(cache) >= cache_size:
                cache.pop(0)  # a forced eviction of the least recently used
        cache.append(name)
    return replays
