"""The server's objects are kept out of the garbage collector's full walks, and closed pages' garbage is still
freed."""
import asyncio
import gc
import weakref

from fraud_app.heap import Heap


class Node:
    pass


def _cycle() -> weakref.ref:
    node = Node()
    node.me = node  # only the cycle collector can free it
    return weakref.ref(node)


def test_settled_objects_are_out_of_the_collectors_sight_until_a_sweep():
    heap = Heap()
    try:
        ref = _cycle()  # garbage already, but not yet collected
        gc.disable()  # no collection may run between making it and freezing it
        node = ref()
        heap.settled()  # young generations collected, then what is left frozen: `node` is alive, so kept
        del node
        gc.enable()
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert ref() is not None  # frozen: a full collection does not walk it
        heap.sweep()
        assert ref() is None and gc.get_freeze_count() > 0  # freed, and the rest frozen again
    finally:
        gc.enable()
        gc.unfreeze()


def test_pages_closing_together_share_one_sweep():
    heap, swept = Heap(sweep_after=0.05), []
    heap.sweep = lambda: (swept.append(1), Heap.sweep(heap))
    loop = asyncio.new_event_loop()
    try:
        ref = _cycle()
        node = ref()
        heap.settled()
        del node
        for _ in range(3):
            heap.page_closed(loop)
        loop.run_until_complete(_until(lambda: ref() is None))
        assert swept == [1]
        heap.page_closed(loop)  # a page closing later gets a sweep of its own
        loop.run_until_complete(_until(lambda: len(swept) == 2))
    finally:
        loop.close()
        gc.unfreeze()


async def _until(done, limit: float = 60.0) -> None:
    for _ in range(int(limit / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")
