"""Dask engine: the shards evaluated on a Dask cluster, their partial results merged here.

``--dask ADDRESS`` connects to a running scheduler (``tcp://host:8786``); ``--dask local``
starts a cluster of worker processes on this machine, one per core. Each shard pair is one
task: :class:`losscli.shards.ShardWork`, the same steps a local run takes, returning the
shard's :class:`losscli.pipeline.Partial`; the client merges the partials in shard order as
they arrive. A worker that dies is replaced and its tasks run again by Dask's scheduler (up
to ``distributed.scheduler.allowed-failures`` times); a shard that fails names the shard.

Imported only when ``--dask`` is given: the core never imports Dask, which is an optional
extra (``pip install 'losscli[dask]'``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from losscli.errors import LoadError, LossCliError, UsageError

if TYPE_CHECKING:
    from losscli.pipeline import Partial
    from losscli.shards import ShardWork

LOCAL = "local"
# how long to wait for a scheduler given by address
CONNECT_TIMEOUT = "10s"


def evaluate(
    address: str, work: ShardWork, advance: Callable[[int], None] | None
) -> tuple[Partial, int]:
    """Every shard's partial result, computed on the cluster and merged in shard order.

    Returns:
        The merged partial result, and how many workers computed shards.

    Raises:
        UsageError: Dask is not installed, or the scheduler cannot be reached.
        LoadError: a shard cannot be read or paired (the worker's own message), or failed on
            the cluster (a worker lost too often, an unexpected error), naming the shard.
    """
    try:
        from distributed import as_completed
    except ImportError:
        raise UsageError(
            "--dask needs Dask's distributed scheduler, which is not installed",
            tip="pip install 'losscli[dask]'",
        ) from None
    count = work.sharded.count
    with _client(address) as client:
        bases = _bases(client, work)
        run = uuid.uuid4().hex[:8]
        futures = [
            client.submit(work, index, bases[index], key=f"losscli-shard-{index}-{run}")
            for index in range(count)
        ]
        index_of = {future.key: index for index, future in enumerate(futures)}
        merged: Partial | None = None
        arrived: dict[int, Partial] = {}
        following = 0
        for future in as_completed(futures):
            index = index_of[future.key]
            arrived[index] = _result(future, work, index)
            if advance is not None:
                advance(arrived[index].samples)
            while following in arrived:  # merged in shard order, as soon as they follow
                partial = arrived.pop(following)
                if merged is None:
                    merged = partial
                else:
                    merged.merge(partial)
                following += 1
        workers = {address for held in client.who_has(futures).values() for address in held}
        assert merged is not None
        return merged, max(len(workers), 1)


def _result(future: Any, work: ShardWork, index: int) -> Any:
    """What a shard's task returned; its failure as one line naming the shard."""
    try:
        found = future.result()
    except LossCliError:
        raise
    except Exception as error:  # KilledWorker, or what the worker raised unexpectedly
        said = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {said[0]}" if said else type(error).__name__
        if type(error).__name__ == "KilledWorker":  # Dask's advice follows: keep the fact
            reason = "KilledWorker: the worker computing it died, each time it was retried"
        raise LoadError(
            work.sharded.label(index), f"failed on the Dask cluster: {reason}"
        ) from None
    return found


def _bases(client: Any, work: ShardWork) -> list[int]:
    """The global index of each shard's first sample: from the headers (``.npy``), or
    counted on the workers (text is counted by reading it, so text shards are read twice:
    a finding names samples by their index in the whole input)."""
    rows = list(work.sharded.rows)
    unknown = [index for index, found in enumerate(rows) if found is None]
    if unknown:
        futures = [client.submit(work.count, index) for index in unknown]
        for index, future in zip(unknown, futures, strict=True):
            rows[index] = _result(future, work, index)
    bases, start = [], 0
    for found in rows:
        bases.append(start)
        start += found or 0
    return bases


@contextlib.contextmanager
def _client(address: str) -> Iterator[Any]:
    """A client of the scheduler at ``address``, or of a local cluster of worker processes."""
    from distributed import Client, LocalCluster

    if address == LOCAL:
        with (
            LocalCluster(
                n_workers=os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: 8787 may be taken, which Dask warns about
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as error:
        raise UsageError(
            f"--dask {address}: cannot reach a Dask scheduler there ({error})",
            tip="give the scheduler's address as tcp://host:8786, or --dask local",
        ) from None
    with client:
        yield client
