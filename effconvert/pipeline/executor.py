"""Where a run's work runs: the checks (PyTorch reference, fusion proof, fp32 noise floor, each
artifact's validation on its runtime and its report plot) and the conversions handed to it.

Two executors behind one interface (`submit` a task, get a future):
- `beside`: a second Python process, so that on two cores the checks and some conversions run while
  this process converts (converting from both ends of the pair list, each process validating as it
  goes: bench/suite.py measures the run with and without it);
- inline: each task runs in the calling process at submission, its future already resolved — for one
  core, or for a caller whose parallelism is elsewhere (a batch runs several jobs at once).

The second process is a plain `python -c` subprocess (not multiprocessing: spawn re-imports the
caller's main script, which breaks a user script without an `if __name__ == "__main__"` guard).
It lives for one run and is gone when `run` returns — a library call leaves no child process
behind. `keep_second_process()` lets a caller that runs many conversions (the tests, a benchmark)
reuse one across runs, explicitly, for as long as its `with` block lasts.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..convert import Artifact, ExportOptions, ModelInfo, convert
from ..errors import ConversionFailed, EffconvertError, os_error_of
from ..fuse import FUSION_TOLERANCE, FusionProof, Unproven, prove_fusion, skipped_proof
from ..quantize import QuantPlan
from ..quiet import first_line
from ..report.html import plot_png
from ..targets import TARGETS
from ..validate import InputSet, Validation, gate_for, task_accuracy, validate_artifact

REFERENCE_BATCH = 8


@dataclass(frozen=True)
class Prepared:
    """What the checks found before any artifact: the proof and the reference."""

    proof: FusionProof
    noise_floor: float  # max rel err of PyTorch fp32 vs float64 on the proof inputs
    reference: np.ndarray  # PyTorch fp32 logits on the validation inputs
    reference_accuracy: float | None  # labelled inputs only
    seconds: float = 0.0  # the checks' own time (the reference and the proof), for the fuse step's line


@dataclass(frozen=True)
class Checked:
    validation: Validation
    plot: str | None  # base64 PNG for report.html, when the artifact ran


@dataclass(frozen=True)
class Converted:
    """A conversion the executor made, then validated (unless the run does not validate)."""

    artifact: Artifact | None
    error: str | None  # the converter's refusal (ConversionFailed), one line
    checked: Checked | None


class SecondProcessFailed(EffconvertError):
    """The second process died (killed, out of memory): the run cannot vouch for its artifacts."""

    exit_code = 3


class Executor:
    """Submit tasks, get futures: in the second process (beside) or at submission (inline)."""

    def __init__(self, beside: bool | None = None) -> None:
        """beside: True/False, or None for beside when there are two cores or more."""
        self._process, self._owned = _acquire(beside)
        self._token = f"{os.getpid()}-{id(self)}"
        self._closed = False

    @property
    def beside(self) -> bool:
        return self._process is not None

    def prepare(
        self, models_file: Path, inputs: InputSet, proof_inputs: np.ndarray, tolerance: float = FUSION_TOLERANCE
    ) -> Future[Prepared]:
        """`models_file`: torch.save((unfused, Unproven | None)) — the loaded model and the fused
        one in float64 exactly as the conversions will use it (None for --no-fuse)."""
        return self._submit(_prepare, self._token, str(models_file), inputs, proof_inputs, tolerance)

    def convert(
        self,
        target: str,
        plan: QuantPlan,
        info: ModelInfo,
        out_dir: Path,
        options: ExportOptions,
        gate_override: str | None,
        validate: bool,
    ) -> Future[Converted]:
        """Convert one (target, plan) of the model `prepare` was given, fused exactly as the run's
        own conversions use it (float64 folds cast to float32 once), then validate it."""
        return self._submit(_convert, self._token, target, plan, info, str(out_dir), options, gate_override, validate)

    def validate(self, artifact: Artifact, gate_override: str | None) -> Future[Checked]:
        """On the artifact's runtime, against its quant's gate (the fp32 gate's floor is the
        noise floor `prepare` measured)."""
        return self._submit(_validate, self._token, artifact, gate_override)

    def close(self, aborted: bool = False) -> None:
        """Release this run's models; stop the second process unless a `keep_second_process` block
        lends it. After an abort (an exception, ^C) it may be mid-task: it is stopped."""
        if self._closed:
            return
        self._closed = True
        if self._process is None:
            _STATE.pop(self._token, None)
            return
        if aborted:
            _LENT.discard(self._process)
            self._process.stop()
        elif self._owned:
            self._process.stop(grace_s=5.0)
        else:
            self._submit(_forget, self._token)
        _IN_USE.release()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(aborted=kind is not None)

    def _submit(self, task: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._process is None:
            future: Future[Any] = Future()
            try:
                future.set_result(task(*args))
            except Exception as exc:  # noqa: BLE001 - delivered where the result is read, as beside
                future.set_exception(exc)
            return future
        return self._process.submit(task, *args)


_IN_USE = threading.Lock()  # one run at a time uses a second process; another run in this process: inline
_LENT: set[_Worker] = set()  # the process a keep_second_process block lends to its runs
# run token -> the run's state in the process that runs its tasks
_STATE: dict[str, _RunState] = {}


def _acquire(beside: bool | None) -> tuple[_Worker | None, bool]:
    """(the worker for a run, whether the run owns it and stops it at its end)."""
    if beside is False or (beside is None and (os.cpu_count() or 1) < 2):
        return None, False
    if not _IN_USE.acquire(blocking=False):
        return None, False
    lent = next((w for w in _LENT if w.alive), None)
    if lent is not None:
        return lent, False
    _LENT.clear()
    return _Worker(torch.get_num_threads()), True


@contextlib.contextmanager
def keep_second_process() -> Iterator[None]:
    """Runs inside this block share one second process (a start costs ~2 s of imports); it stops
    when the block ends. Without it, each run starts and stops its own."""
    worker = _Worker(torch.get_num_threads())
    _LENT.add(worker)
    try:
        yield
    finally:
        _LENT.discard(worker)
        worker.stop(grace_s=5.0)


@dataclass
class _RunState:
    inputs: InputSet
    reference: np.ndarray
    noise_floor: float
    model: torch.nn.Module
    sample: torch.Tensor


class _Worker:
    """A Python running `_serve`: tasks and results as pickles over its stdin/stdout. Tasks are
    written by a sender thread and results read by a reader thread, so neither side ever blocks
    the conversions on a full pipe."""

    def __init__(self, threads: int) -> None:
        # What it prints (warnings, a crash's traceback) goes to an unnamed file: its last line
        # is the message when it dies.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process; closed in stop()
        # Its temporary files (converters leave some: apple/coremltools#2670) go to a folder removed
        # once it has stopped, however it stopped.
        self._tmp = tempfile.mkdtemp(prefix="effconvert-second-")
        # Its OpenMP threads sleep when idle instead of spinning: spinning threads would take the
        # core the conversions are using.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "TMPDIR": self._tmp}
        self._popen = subprocess.Popen(
            [sys.executable, "-c", f"from effconvert.pipeline.executor import _serve; _serve({int(threads)})"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            start_new_session=True,
        )  # ^C in a terminal is the run's to handle, not this process's
        self._futures: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._outbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        threading.Thread(target=self._send, daemon=True, name="effconvert-second-send").start()
        threading.Thread(target=self._receive, daemon=True, name="effconvert-second-receive").start()

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def pid(self) -> int:
        return self._popen.pid

    def submit(self, task: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if not self.alive:
                future.set_exception(_died(self._popen.returncode, self._last_words()))
                return future
            self._next += 1
            self._futures[self._next] = future
            self._outbox.put((self._next, task, args))
        return future

    def stop(self, grace_s: float = 0.0) -> None:
        """An idle process ends on its closed stdin within `grace_s`; one mid-task is killed."""
        if grace_s:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()  # type: ignore[union-attr]  # opened with stdin=PIPE
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=grace_s)
        self._popen.kill()
        self._popen.wait()
        self._stderr.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _send(self) -> None:
        stdin = self._popen.stdin
        assert stdin is not None  # opened with PIPE
        try:
            while True:
                pickle.dump(self._outbox.get(), stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        except (OSError, ValueError):  # the process is gone: the reader fails what is pending
            return

    def _receive(self) -> None:
        stdout = self._popen.stdout
        assert stdout is not None  # opened with PIPE
        try:
            while True:
                number, ok, value = pickle.load(stdout)
                with self._lock:
                    future = self._futures.pop(number)
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(SecondProcessFailed(f"a check failed in the second process: {value}"))
        except (EOFError, OSError, pickle.UnpicklingError):
            code = self._popen.wait()
            with self._lock:
                pending, self._futures = list(self._futures.values()), {}
            for future in pending:
                future.set_exception(_died(code, self._last_words()))

    def _last_words(self) -> str:
        try:
            self._stderr.seek(0)
            lines = [line for line in self._stderr.read()[-4096:].decode(errors="replace").splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1].strip() if lines else ""


def _died(code: int | None, last_words: str = "") -> EffconvertError:
    full_disk = os_error_of(RuntimeError(last_words))  # its last words name a full disk: that, not memory
    if full_disk is not None:
        return full_disk
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    said = f": {last_words}" if last_words else ""
    return SecondProcessFailed(
        f"the second process died ({how}) before finishing its checks{said}",
        hint="run again; with little memory, convert fewer targets at a time",
    )


def _serve(threads: int) -> None:
    """The second process's loop: run each task, send back (number, ok, result or error text).
    The process is effconvert's own: the MIL executor's heap settings (runtime/mil/heap.py) apply
    to it as they do to the CLI."""
    from ..runtime.mil import heap

    heap.settle()
    torch.set_num_threads(threads)  # the same as the run's: identical reference logits
    import timm  # noqa: F401 - unpickling the run's model needs it: imported while the run still loads

    tasks = sys.stdin.buffer
    # Results get their own descriptor; fd 1 becomes stderr, so that nothing a library prints
    # (Python or native) can corrupt the result stream.
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            number, task, args = pickle.load(tasks)
        except EOFError:
            return
        try:
            reply = (number, True, task(*args))
        except Exception as exc:  # noqa: BLE001 - sent back whole; the run decides
            reply = (number, False, first_line(exc))
        pickle.dump(reply, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


def _prepare(token: str, models_file: str, inputs: InputSet, proof_inputs: np.ndarray, tolerance: float) -> Prepared:
    started = time.perf_counter()
    # Written a moment ago by this run, into its private folder: not user data.
    loaded: tuple[torch.nn.Module, Unproven | None] = torch.load(models_file, weights_only=False)
    unfused, unproven = loaded
    reference = logits_of(unfused, inputs.inputs)
    if unproven is not None:
        n = len(proof_inputs)
        same = len(inputs.inputs) >= n and np.array_equal(inputs.inputs[:n], proof_inputs)
        # The reference's first batch is the proof's fp32 run on the same inputs: not run twice.
        ref32 = torch.from_numpy(reference[:n]) if same and n == REFERENCE_BATCH else None
        proof = prove_fusion(unfused, unproven, torch.from_numpy(proof_inputs), tolerance=tolerance, ref32=ref32)
        noise_floor = proof.fp32_noise_floor  # the proof ran the model in float64 on these inputs
    else:
        proof, noise_floor = skipped_proof(tolerance), fp32_noise_floor(unfused, proof_inputs)
    model = unproven.model64.float().eval() if unproven is not None else unfused  # as the run casts it
    _STATE[token] = _RunState(inputs, reference, noise_floor, model, torch.from_numpy(inputs.inputs[:1]))
    accuracy = None if inputs.labels is None else task_accuracy(reference, inputs.labels)
    return Prepared(proof, noise_floor, reference, accuracy, time.perf_counter() - started)


def _validate(token: str, artifact: Artifact, gate_override: str | None) -> Checked:
    state = _STATE[token]
    gate = gate_for(artifact.quant, gate_override, fp32_noise_floor=state.noise_floor)
    validation = validate_artifact(
        artifact, state.inputs, state.reference, gate=gate, budget=TARGETS[artifact.target].validation_budget
    )
    outputs = validation.outputs
    plot = plot_png(state.reference[: len(outputs)], outputs) if outputs is not None else None
    return Checked(validation, plot)


def _convert(
    token: str,
    target: str,
    plan: QuantPlan,
    info: ModelInfo,
    out_dir: str,
    options: ExportOptions,
    gate_override: str | None,
    validate: bool,
) -> Converted:
    state = _STATE[token]
    try:
        artifact = convert(
            state.model, info, target=target, plan=plan, out_dir=Path(out_dir), sample=state.sample, options=options
        )
    except ConversionFailed as exc:
        return Converted(None, exc.message, None)
    return Converted(artifact, None, _validate(token, artifact, gate_override) if validate else None)


def _forget(token: str) -> None:
    _STATE.pop(token, None)


@torch.no_grad()
def logits_of(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    batches = [
        model(torch.from_numpy(inputs[i : i + REFERENCE_BATCH])).numpy() for i in range(0, len(inputs), REFERENCE_BATCH)
    ]
    return np.concatenate(batches)


@torch.no_grad()
def fp32_noise_floor(model: torch.nn.Module, inputs: np.ndarray) -> float:
    """max rel err of PyTorch fp32 against the same model in float64: what fp32 itself costs."""
    import copy

    reference = logits_of(model, inputs)
    exact = logits_of(copy.deepcopy(model).double(), inputs.astype(np.float64))
    scale = float(np.abs(exact).max())
    return float(np.abs(reference - exact).max() / scale) if scale > 0 else 0.0
