"""``RayClassifier``: the ``Classifier`` interface, run as a Ray Data job.

It stands in for ``core.runtime.classifier.Classifier`` wherever a run is driven
(``cli/classify.py``'s ``_run``): the same ``spec``, ``device``, ``notes``,
``describe()`` and ``predict(paths, top_k, cancel)``, a generator of the same
``PredictionBatch`` events with ``ImageResult`` rows and ``RateMeter`` progress, so the
writers, ``--resume``, the progress bar and the summary are the local ones.

The job: the paths are listed on the driver (``expand_paths``, as locally), put in a
Ray Dataset, decoded by CPU tasks (``worker.decode_batch``), classified by an actor pool
of ``worker.ModelWorker`` (``map_batches`` with ``compute=ActorPoolStrategy``; one actor
per GPU with ``num_gpus=1`` where the cluster has GPUs, CPU actors running the fastest
verified CPU engine otherwise), and streamed back with ``iter_batches``. On CPU actors
Ray Data fuses the decode tasks into the actors (the same resources), so pixels never
go through the object store; next to GPU actors decoding stays on separate CPU tasks.

Rows come back in the order their batches finish, not the listing order. An actor that
dies is restarted by Ray and its batch retried, so every row still arrives once.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..core.data.folders import expand_paths
from ..core.data.images import ImageProblem
from ..core.errors import AppError, WeightsError
from ..core.jobs import NEVER, CancelToken, Progress, RateMeter, run_to_end
from ..core.models import registry
from ..core.runtime.classifier import ImageResult, PredictionBatch
from . import connect as ray_connect
from .package import ModelPackage, from_export, from_weights
from .worker import ROSTER_PREFIX, ModelWorker, Roster, batch_results, decode_batch

CPU_BATCH = 16  # images per Ray task on CPU actors: fewer tasks, same speed as 4 per run
GPU_BATCH = 64


class RayClassifier:
    """A model run by an actor pool on Ray (local, or the cluster at ``address``).

    ``workers`` is the number of model actors (default: one per GPU, or one per CPU
    on a CPU-only cluster); ``threads`` the inference threads of each CPU actor
    (default 1: the actors, not the threads, share the cores).
    """

    def __init__(
        self,
        model: str,
        address: str | None = ray_connect.LOCAL,
        device: str = "auto",
        backend: str | None = None,
        precision: str = "fp32",
        batch_size: int | None = None,
        quiet: bool = False,
        workers: int | None = None,
        threads: int | None = None,
        num_cpus: int | None = None,
    ) -> None:
        self.quiet = quiet
        self.started = ray_connect.connect(address, num_cpus)
        try:
            self._setup(model, device, backend, precision, batch_size, workers, threads)
        except BaseException:
            self.close()
            raise

    def _setup(self, model, device, backend, precision, batch_size, workers, threads) -> None:
        import ray

        ray_connect._quiet_data()
        self.spec = registry.resolve(model)
        cpus, gpus = ray_connect.resources()
        self.gpu = _wants_gpu(device, gpus)
        self.device = "cuda" if self.gpu else "cpu"
        self.package: ModelPackage = build_package(self.spec, self.gpu, backend, precision)
        self.notes: tuple[str, ...] = self.package.notes
        self.workers = max(1, workers or (gpus if self.gpu else max(1, cpus)))
        self.threads = threads or 1
        self.batch_size = batch_size or (GPU_BATCH if self.gpu else CPU_BATCH)
        self._package_ref = ray.put(self.package)  # once: every actor reads this copy
        self._roster = None

    # ---------------------------------------------------------------- the interface
    def describe(self) -> str:
        kind = "GPU" if self.gpu else "CPU"
        actors = "actor" if self.workers == 1 else "actors"
        return f"Ray, {self.workers} {kind} {actors}, {self.package.engine(self.device)}"

    def predict(
        self,
        paths: Iterable[str | os.PathLike],
        top_k: int = 5,
        cancel: CancelToken = NEVER,
        shards: dict | None = None,
    ) -> Iterator[PredictionBatch]:
        """Job: classify every file given or found, on Ray; cancel is checked per batch.

        ``shards`` (``ShardFolder.options``): the workers write the rows as Parquet shards
        there, and every event says its rows are ``stored``.
        """
        what = f"Starting {self.describe()} for {self.spec.name}…"
        yield PredictionBatch((), Progress(0, 1, what, "steps"), "loading", self.notes)
        found = expand_paths(paths, cancel)
        meter = RateMeter(len(found), "images")
        if not found:
            yield PredictionBatch((), meter.progress(0, "No images found."))
            return 0
        top_k = max(1, min(int(top_k), self.spec.num_classes))
        stored = shards is not None
        unlisted = tuple(ImageResult(p.path, problem=p.reason) for p in found if _problem(p))
        done = len(unlisted)
        if unlisted:
            _store(shards, unlisted)
            yield self._event(unlisted, meter, done, len(found), stored)
        files = [str(p) for p in found if not _problem(p)]
        if not files:
            return done
        self._roster = _start_roster()
        dataset = self._dataset(files, top_k, shards)
        batches = dataset.iter_batches(batch_size=None, batch_format="numpy")
        try:
            for batch in batches:
                cancel.raise_if_cancelled()
                results = batch_results(batch, self.spec.categories)
                if stored:
                    _store(shards, _unseen(shards, results, batch["shard"]))
                done += len(results)
                yield self._event(results, meter, done, len(found), stored)
        finally:
            _close(batches)
            self._stop_roster()
        return done

    def close(self) -> None:
        """Shut Ray down when this classifier started it (a joined cluster keeps running)."""
        self._stop_roster()
        if getattr(self, "started", False):
            import ray

            ray.shutdown()
            self.started = False

    def model_actors(self) -> list:
        """The handles of the running job's model actors (for operators and tests)."""
        import ray

        return ray.get(self._roster.members.remote()) if self._roster is not None else []

    # ---------------------------------------------------------------- the job
    def _dataset(self, files: list[str], top_k: int, shards: dict | None = None):
        import ray.data

        # Enough blocks for every actor to have work, batches no larger than a share.
        size = max(1, min(self.batch_size, math.ceil(len(files) / self.workers)))
        blocks = max(1, min(math.ceil(len(files) / size), 4096))
        decode_cpus = 1
        actor = {"num_gpus": 1, "num_cpus": 1} if self.gpu else {"num_cpus": decode_cpus}
        dataset = ray.data.from_items([{"path": f} for f in files], override_num_blocks=blocks)
        dataset = dataset.map_batches(
            decode_batch,
            fn_kwargs={"preprocess": self.package.preprocess, "wants": self.package.wants},
            batch_size=size,
            batch_format="numpy",
            num_cpus=decode_cpus,
        )
        return dataset.map_batches(
            ModelWorker,
            fn_constructor_kwargs={
                "package_ref": [self._package_ref],
                "top_k": top_k,
                "device": self.device,
                "threads": None if self.gpu else self.threads,
                "roster": self._roster_name,
                "shards": _worker_shards(shards, self.spec.categories),
            },
            batch_size=size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            **actor,
        )

    def _event(self, results, meter: RateMeter, done: int, total: int, stored: bool):
        message = f"Classified {done} of {total}"
        progress = meter.progress(done, message)
        return PredictionBatch(tuple(results), progress, engine=self.describe(), stored=stored)

    @property
    def _roster_name(self) -> str | None:
        return getattr(self._roster, "_effnet_name", None)

    def _stop_roster(self) -> None:
        roster, self._roster = getattr(self, "_roster", None), None
        if roster is not None:
            import ray

            try:
                ray.kill(roster)
            except Exception:  # noqa: BLE001 - Ray already gone
                pass


def _problem(item) -> bool:
    return isinstance(item, ImageProblem)


def _worker_shards(shards: dict | None, categories) -> dict | None:
    return None if shards is None else {**shards, "categories": list(categories)}


def _unseen(shards: dict, results, names) -> list:
    """Rows whose shard a worker did not write, or wrote where this computer cannot see.

    On a cluster the output folder must be storage every worker shares; where it is not
    (another mount, a worker's own disk), the driver writes those rows itself.
    """
    folder, seen = Path(shards["folder"]), {}
    missed = []
    for result, name in zip(results, names, strict=True):
        name = str(name)
        if name not in seen:
            seen[name] = bool(name) and (folder / name).is_file()
        if not seen[name]:
            missed.append(result)
    return missed


def _store(shards: dict | None, results) -> None:
    """Write rows as a shard from the driver (problems found here, shards a worker missed)."""
    if shards is not None and results:
        from ..core.runtime.results_shards import write_shard

        write_shard(shards["folder"], results, shards["top_k"], shards["unsure"])


def _close(iterator) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()  # stops the streaming executor: no more tasks are started


def _start_roster():
    import ray

    name = f"{ROSTER_PREFIX}{uuid.uuid4().hex[:12]}"
    roster = ray.remote(num_cpus=0)(Roster).options(name=name).remote()
    roster._effnet_name = name
    return roster


def _wants_gpu(device: str, gpus: int) -> bool:
    device = (device or "auto").strip().lower()
    if device == "cpu":
        return False
    if device.startswith("cuda"):
        if not gpus:
            raise AppError(f"The Ray cluster has no GPUs, so --device {device} cannot run there.")
        return True
    if device != "auto":
        raise AppError(f'"{device}" is not a device. Choose auto, cpu or cuda.')
    return gpus > 0


def _weights(spec) -> Path:
    path = registry.weights_path(spec)
    if path is None:
        raise WeightsError(
            f"The weights for {spec.name} are not on this computer. Run `effnet-app download "
            f"{spec.key.upper()}` first: Ray workers never download."
        )
    return Path(path)


def build_package(spec, gpu: bool, backend: str | None, precision: str) -> ModelPackage:
    """What the workers run: what this computer would run locally, read once."""
    from ..core.runtime import choices, engines
    from ..core.runtime.export_backend import ExportBackend

    backend = backend or choices.default_backend()
    if gpu or backend == "torch":
        return from_weights(spec, _weights(spec))
    plan = engines.fast_plan(spec.key, "cpu", backend, precision)
    if plan is not None:
        return from_export(spec, plan.info, plan.backend, plan.precision)
    job = engines.classifier_job(spec, _weights(spec), "cpu", backend, precision)
    made = run_to_end(job)  # exports, checks and times the engines, as a local run does
    if isinstance(made.backend, ExportBackend):
        from ..core.export import cache

        info = cache.find_current(spec.key)
        if info is not None:
            kind, used = made.backend.name, made.backend.precision
            return from_export(spec, info, kind, used, made.notes)
    return from_weights(spec, _weights(spec), made.notes)
