"""The server's objects are kept out of the garbage collector's full walks, and closed pages' garbage is still
freed."""
import asyncio
import gc
import threading
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

    async def closing() -> None:  # as the server's event loop sees pages close
        loop = asyncio.get_running_loop()
        ref = _cycle()
        node = ref()
        heap.settled()
        del node
        for _ in range(3):
            heap.page_closed(loop)
        await _until(lambda: ref() is None)
        assert swept == [1]
        heap.page_closed(loop)  # a page closing later gets a sweep of its own
        await _until(lambda: len(swept) == 2)

    failed = []
    # A thread of its own: the browser tests leave an event loop running on this one.
    worker = threading.Thread(target=lambda: _record(failed, lambda: asyncio.run(closing())))
    try:
        worker.start()
        worker.join(120)
        assert not worker.is_alive() and not failed, failed
    finally:
        gc.unfreeze()


def _record(failed: list, run) -> None:
    try:
        run()
    except BaseException as exc:  # noqa: BLE001  (shown by the test's assertion)
        failed.append(exc)


async def _until(done, limit: float = 60.0) -> None:
    for _ in range(int(limit / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")
