"""Run a search's trials in parallel on a Ray cluster: a local one, or one you join.

:func:`~mnaszoo.search.run.runner.run_search` (and ``search_digits``, ``mnaszoo search``) use
:class:`RayExecutor` when given ``workers=N`` (start a local Ray cluster of N trial slots) or
``ray_address=ADDR`` (join a running cluster). The controller stays in the calling process: it
proposes a batch, looks up or measures the batch's latency itself, sends one small task per trial
(the spec, seed and index, a few hundred bytes; the scoring function and its data travel once per
search through Ray's object store) and takes the results back in trial order. So the search is the
same as an in-process one for any number of workers, and a worker killed mid-trial costs only
that trial's time: Ray runs the task again on a live worker (``retries`` times at most).

Ray is an optional extra: ``pip install 'mnaszoo[distributed]'``. Every node of a cluster needs
the same mnaszoo, torch and Python as the controller (the trial function is imported by name).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import sys
from collections.abc import Generator, Sequence
from typing import Any

from ..._ray import probe_ray_address
from ..._validate import check_int
from ...errors import ArgumentTypeError, InvalidArgumentError, MnaszooError
from .trials import TrialFunction, TrialTask, run_trial

__all__ = ["RayExecutor"]

RAY_VERSION = "2.60.0"
_MISSING = f"pip install 'mnaszoo[distributed]' (ray=={RAY_VERSION})"


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError as error:
        raise MnaszooError(
            f"Running search trials on workers needs Ray, which is not installed: {_MISSING}; or"
            " leave out workers/ray_address (--workers/--ray-address) to run them in this process."
        ) from error


class RayExecutor:
    """Runs batches of trials as Ray tasks and yields their results in trial order.

    Args:
        workers: start a local Ray cluster with room for this many trials at once (its CPUs are
            ``workers x cpus_per_trial``); it is shut down by :meth:`close`.
        address: join the running cluster at this address (``"HOST:PORT"`` of its head, or
            ``"auto"`` for the one ``ray start`` began on this machine); the cluster runs as many
            trials at once as it has free CPUs. Give exactly one of ``workers`` and ``address``.
        cpus_per_trial: CPUs Ray reserves for each trial (the threads a trial trains with).
        retries: times a trial is run again after its worker process or node died.

    If this process already has a Ray connection (``ray.init`` was called), it is used as is and
    left open by :meth:`close`.

    Raises:
        MnaszooError: Ray is not installed, or the cluster cannot be started or reached.
        InvalidArgumentError: both or neither of ``workers`` and ``address``, or a bad number.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        address: str | None = None,
        cpus_per_trial: int = 1,
        retries: int = 3,
    ) -> None:
        if (workers is None) == (address is None):
            raise InvalidArgumentError(
                "Give exactly one of workers (start a local Ray cluster) and address (join one)."
            )
        self.cpus_per_trial = check_int("cpus_per_trial", cpus_per_trial, minimum=1)
        self.retries = check_int("retries", retries, minimum=0)
        if workers is not None:
            workers = check_int("workers", workers, minimum=1)
            if "ray" not in sys.modules:
                # Ray replaces 127.0.0.1 with the machine's network address unless it believes it
                # runs where clusters are unsupported; a local cluster needs no network, so keep
                # all of its ports on the loopback interface. No usage reports either.
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._ray = _import_ray()
        self._owned = not self._ray.is_initialized()
        if self._owned and address is not None:
            _probe(address)
        if self._owned:
            options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
            if workers is not None:
                # "local": a new cluster, even where RAY_ADDRESS or `ray start` names another.
                options.update(address="local", num_cpus=workers * self.cpus_per_trial)
            else:
                options["address"] = address
            try:
                self._ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
                raise MnaszooError(
                    f"Could not start or join {where}: {error}. For a cluster, check the address"
                    " (the head's HOST:PORT, as `ray start --head` printed it) and that this"
                    " machine has the cluster's auth token (RAY_AUTH_MODE=token and"
                    " ~/.ray/auth_token or RAY_AUTH_TOKEN)."
                ) from error
        self._task = self._ray.remote(
            num_cpus=self.cpus_per_trial, max_retries=self.retries, retry_exceptions=False
        )(run_trial)
        self._shipped: tuple[TrialFunction, Any] | None = None

    def _function_ref(self, function: TrialFunction) -> Any:
        # The scoring function (with its data, e.g. the proxy task's images) goes to the object
        # store once per search; each task then carries only a reference to it.
        if self._shipped is None or self._shipped[0] is not function:
            try:
                self._shipped = (function, self._ray.put(function))
            except (TypeError, AttributeError, pickle.PicklingError) as error:
                raise ArgumentTypeError(
                    f"The search's {function.kind} function cannot be sent to Ray workers: {error}."
                    " Workers need a picklable callable (a module-level function, a closure, or an"
                    " object whose attributes pickle); or run the trials in this process."
                ) from error
        return self._shipped[1]

    def run(
        self, function: TrialFunction, tasks: Sequence[TrialTask]
    ) -> Generator[tuple[object, float], None, None]:
        """Submit every task at once and yield ``(raw accuracy, seconds)`` in task order.

        Raises:
            ArgumentTypeError: the function cannot be pickled.
            MnaszooError: a trial's worker died more than ``retries`` times, or the cluster went
                away.
            Exception: whatever the scoring function raised, unchanged.
        """
        cached = getattr(function.fn, "cached", None) if function.kind == "score" else None
        remember = getattr(function.fn, "remember", None) if cached is not None else None
        shipped = self._function_ref(function)
        refs: list[Any] = []
        known: dict[str, Any] = {}  # identical networks of one batch run once (cacheable scores)
        for task in tasks:
            hit = cached(_spec_of(task)) if cached is not None else None
            if hit is not None:
                refs.append((hit, 0.0))
                continue
            key = json.dumps({**task.spec, "name": ""}, sort_keys=True)
            if cached is not None and key in known:
                refs.append(known[key])
                continue
            ref = self._task.remote(shipped, task)
            known[key] = ref
            refs.append(ref)
        taken = 0  # results handed out so far; their tasks are finished
        try:
            for task, ref in zip(tasks, refs, strict=True):
                result = ref if isinstance(ref, tuple) else self._get(ref, task)
                taken += 1
                if remember is not None and isinstance(result[0], (int, float)):
                    remember(_spec_of(task), float(result[0]))
                yield result
        finally:
            self._cancel_unfinished(refs[taken:])

    def _cancel_unfinished(self, refs: Sequence[Any]) -> None:
        """Stop the tasks of a failed or abandoned batch that are still running.

        Only tasks not finished yet: Ray 2.60's driver aborts (``Check failed ... Tried to
        complete task that was not pending``, the whole process gone) when a force-cancel meets a
        task whose reply is being processed at that moment. Seen in one of three runs of the
        worker-kill test when every finished task of a batch was cancelled as well.
        """
        unique = list({id(ref): ref for ref in refs if not isinstance(ref, tuple)}.values())
        if not unique:
            return
        # Best effort: the cluster may be gone (that may be the error on its way out), its tasks
        # with it, and the caller must see that original error, not one from the clean-up.
        with contextlib.suppress(Exception):
            _, running = self._ray.wait(unique, num_returns=len(unique), timeout=0)
            for ref in running:
                self._ray.cancel(ref, force=True)

    def _get(self, ref: Any, task: TrialTask) -> tuple[object, float]:
        exceptions = importlib.import_module("ray.exceptions")
        try:
            value: tuple[object, float] = self._ray.get(ref)
        except exceptions.RayTaskError as error:
            # The scoring function raised: give the caller its own exception, not Ray's wrapper.
            cause = getattr(error, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as error:
            raise MnaszooError(
                f"Trial {task.index} failed: its worker died {self.retries + 1} times ({error})."
                " The search state holds every trial finished before it; rerun the same command"
                " to resume."
            ) from error
        except exceptions.RaySystemError as error:
            raise MnaszooError(
                f"Trial {task.index} failed: the Ray cluster went away ({error}). Rerun the same"
                " command to resume from the search state."
            ) from error
        return value

    def close(self) -> None:
        """Shut the Ray connection (and a local cluster) down, if this executor opened it."""
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False


def check_placement(
    workers: object, ray_address: object, cpus_per_trial: object
) -> tuple[int | None, str | None, int]:
    """Check the ``workers``, ``ray_address`` and ``cpus_per_trial`` arguments of a search."""
    if workers is not None:
        workers = check_int("workers", workers, minimum=1)
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise InvalidArgumentError(
            "ray_address must be a Ray cluster address such as '10.0.0.5:6379' or 'auto', got"
            f" {ray_address!r}."
        )
    if workers is not None and ray_address is not None:
        raise InvalidArgumentError(
            "Give workers (start a local Ray cluster) or ray_address (join a running one), not"
            " both; a joined cluster runs as many trials at once as it has CPUs."
        )
    cpus = check_int("cpus_per_trial", cpus_per_trial, minimum=1)
    return workers, ray_address, cpus


def _probe(address: str) -> None:
    probe_ray_address(address, local_option="--workers N")


def _spec_of(task: TrialTask) -> Any:
    from ...models.specs import NetworkSpec

    return NetworkSpec.from_dict(task.spec)
