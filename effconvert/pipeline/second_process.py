"""A run's second process: the checks (PyTorch reference, fusion proof, fp32 noise floor, each
artifact's validation on its runtime and its report plot) and some of the conversions, beside the
conversions the run makes itself.

Why: on two cores a run's converters kept about one busy (116% CPU for FastViT-S12 to every
target) and the checks waited their turn. In a thread the checks fought the converters for the
GIL (the MIL validation took 20.9 s instead of 1.4 s). In a second process the checks alone saved
little (the converters ran ~20% slower beside them); converting from both ends of the list,
each process validating as it goes, took the run from 49 s to 37 s (bench/ measures it).

Inline mode runs the very same task functions in the calling process at submission: for one
core, or for a caller whose parallelism is elsewhere (a batch runs several jobs at once).

The process is a plain `python -c` subprocess, spawned once and reused by later runs of the same
process (tests, the API; a start costs ~2 s of imports), holding one run's models at a time.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..convert import Artifact, ExportOptions, ModelInfo, convert
from ..errors import ConversionFailed, EffconvertError
from ..quiet import first_line
from ..quantize import QuantPlan
from ..fuse import FUSION_TOLERANCE, FusionProof, Unproven, prove_fusion, skipped_proof
from ..report.html import plot_png
from ..validate import InputSet, Validation, gate_for, task_accuracy, validate_artifact

REFERENCE_BATCH = 8


@dataclass(frozen=True)
class Prepared:
    """What the second process found before any artifact: the proof and the reference."""

    proof: FusionProof
    noise_floor: float                   # max rel err of PyTorch fp32 vs float64 on the proof inputs
    reference: np.ndarray                # PyTorch fp32 logits on the validation inputs
    reference_accuracy: float | None     # labelled inputs only


@dataclass(frozen=True)
class Checked:
    validation: Validation
    plot: str | None                     # base64 PNG for report.html, when the artifact ran


@dataclass(frozen=True)
class Converted:
    """A conversion the second process made, then validated (unless the run does not validate)."""

    artifact: Artifact | None
    error: str | None                    # the converter's refusal (ConversionFailed), one line
    checked: Checked | None


class SecondProcessFailed(EffconvertError):
    """The second process died (killed, out of memory): the run cannot vouch for its artifacts."""

    exit_code = 3


class SecondProcess:
    """Submit tasks, get futures. Beside: the shared second process, tasks in submission order.
    Inline: each task runs at submission, its future already resolved."""

    def __init__(self, beside: bool | None = None) -> None:
        """beside: True/False, or None for beside when there are two cores or more."""
        self._process = _shared_process() if _may_use_process(beside) else None
        self._token = f"{os.getpid()}-{id(self)}"
        self._closed = False

    @property
    def beside(self) -> bool:
        return self._process is not None

    def prepare(self, models_file: Path, inputs: InputSet, proof_inputs: np.ndarray,
                tolerance: float = FUSION_TOLERANCE) -> Future[Prepared]:
        """`models_file`: torch.save((unfused, Unproven | None)) — the loaded model and the fused
        one in float64 exactly as the conversions will use it (None for --no-fuse)."""
        return self._submit(_prepare, self._token, str(models_file), inputs, proof_inputs, tolerance)

    def convert(self, target: str, plan: QuantPlan, info: ModelInfo, out_dir: Path, options: ExportOptions,
                gate_override: str | None, validate: bool) -> Future[Converted]:
        """Convert one (target, plan) of the model `prepare` was given, fused exactly as the run's
        own conversions use it (float64 folds cast to float32 once), then validate it."""
        return self._submit(_convert, self._token, target, plan, info, str(out_dir), options,
                            gate_override, validate)

    def validate(self, artifact: Artifact, gate_override: str | None) -> Future[Checked]:
        """On the artifact's runtime, against its quant's gate (the fp32 gate's floor is the
        noise floor `prepare` measured)."""
        return self._submit(_validate, self._token, artifact, gate_override)

    def close(self, aborted: bool = False) -> None:
        """Release this run's models. After an abort (an exception, ^C) the process may be
        mid-task: it is stopped, and the next run starts a fresh one."""
        if self._closed:
            return
        self._closed = True
        if self._process is None:
            _STATE.pop(self._token, None)
            return
        if aborted:
            _discard(self._process)
        else:
            self._submit(_forget, self._token)
        _IN_USE.release()

    def _submit(self, task: Callable, *args: Any) -> Future:
        if self._process is None:
            future: Future = Future()
            try:
                future.set_result(task(*args))
            except Exception as exc:  # noqa: BLE001 - delivered where the result is read, as beside
                future.set_exception(exc)
            return future
        return self._process.submit(task, *args)


def _may_use_process(requested: bool | None) -> bool:
    if requested is False or (requested is None and (os.cpu_count() or 1) < 2):
        return False
    return _IN_USE.acquire(blocking=False)                # another run in this process has it: inline


# --- the second process --------------------------------------------------------------------------

_PROCESS: _Worker | None = None
_PROCESS_LOCK = threading.Lock()
_IN_USE = threading.Lock()                  # one run at a time uses the shared second process
# run token -> the run's state here: inputs, reference, noise floor, the model the run converts, its sample
_STATE: dict[str, _RunState] = {}


@dataclass
class _RunState:
    inputs: InputSet
    reference: np.ndarray
    noise_floor: float
    model: torch.nn.Module
    sample: torch.Tensor


def _shared_process() -> _Worker:
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None or not _PROCESS.alive:
            _PROCESS = _Worker(torch.get_num_threads())
        return _PROCESS


@atexit.register
def _shutdown() -> None:
    """At exit: an idle second process ends on its closed stdin; one mid-task is stopped."""
    if _PROCESS is not None:
        _PROCESS.stop(grace_s=2.0)


def _discard(worker: _Worker) -> None:
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is worker:
            _PROCESS = None
    worker.stop()


class _Worker:
    """A Python running `_serve`: tasks and results as pickles over its stdin/stdout.
    A plain subprocess, not multiprocessing: spawn re-imports the caller's main script, which
    breaks any user script that calls effconvert without an `if __name__ == "__main__"` guard.
    Tasks are written by a sender thread and results read by a reader thread, so neither side
    ever blocks the conversions on a full pipe."""

    def __init__(self, threads: int) -> None:
        # What it prints (warnings, a crash's traceback) goes to an unnamed file: its last line
        # is the message when it dies.
        self._stderr = tempfile.TemporaryFile(dir=_SYSTEM_TMP)
        self._popen = subprocess.Popen(
            [sys.executable, "-c", f"from effconvert.pipeline.second_process import _serve; _serve({int(threads)})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=_ENV,
            start_new_session=True)    # ^C in a terminal is the run's to handle, not this process's
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._send, daemon=True, name="effconvert-second-send").start()
        threading.Thread(target=self._receive, daemon=True, name="effconvert-second-receive").start()

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    def submit(self, task: Callable, *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if not self.alive:
                future.set_exception(_died(self._popen.returncode, self._last_words()))
                return future
            self._next += 1
            self._futures[self._next] = future
            self._outbox.put((self._next, tempfile.gettempdir(), task, args))
        return future

    def stop(self, grace_s: float = 0.0) -> None:
        if grace_s:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=grace_s)
        self._popen.kill()
        self._popen.wait()

    def _send(self) -> None:
        try:
            while True:
                pickle.dump(self._outbox.get(), self._popen.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._popen.stdin.flush()
        except (OSError, ValueError):      # the process is gone: the reader fails what is pending
            return

    def _receive(self) -> None:
        try:
            while True:
                number, ok, value = pickle.load(self._popen.stdout)
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
            lines = [l for l in self._stderr.read()[-4096:].decode(errors="replace").splitlines() if l.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1].strip() if lines else ""


# Its OpenMP threads sleep when idle instead of spinning: spinning threads would take the core
# the conversions are using.
_ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
_SYSTEM_TMP = tempfile.gettempdir()       # at import, before a run points tempfile at its own folder


def _died(code: int | None, last_words: str = "") -> SecondProcessFailed:
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    said = f": {last_words}" if last_words else ""
    return SecondProcessFailed(f"the second process died ({how}) before finishing its checks{said}",
                        hint="run again; with little memory, convert fewer targets at a time")


def _serve(threads: int) -> None:
    """The second process's loop: run each task, send back (number, ok, result or error text)."""
    torch.set_num_threads(threads)          # the same as the run's: identical reference logits
    import timm  # noqa: F401 - unpickling the run's model needs it: imported while the run still loads
    tasks = sys.stdin.buffer
    # Results get their own descriptor; fd 1 becomes stderr, so that nothing a library prints
    # (Python or native) can corrupt the result stream.
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            number, folder, task, args = pickle.load(tasks)
        except EOFError:
            return
        _in_tempdir(folder)
        try:
            reply = (number, True, task(*args))
        except Exception as exc:  # noqa: BLE001 - sent back whole; the run decides
            reply = (number, False, first_line(exc))
        pickle.dump(reply, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()


def _in_tempdir(folder: str) -> None:
    # The run's private temp folder (workspace.private_tempdir): a reused process was spawned
    # during an earlier run, whose folder is gone.
    tempfile.tempdir = folder
    os.environ["TMPDIR"] = folder


def _prepare(token: str, models_file: str, inputs: InputSet, proof_inputs: np.ndarray,
             tolerance: float) -> Prepared:
    # Written a moment ago by this run, into its private folder: not user data.
    unfused, unproven = torch.load(models_file, weights_only=False)
    unproven: Unproven | None
    reference = logits_of(unfused, inputs.inputs)
    if unproven is not None:
        n = len(proof_inputs)
        same = len(inputs.inputs) >= n and np.array_equal(inputs.inputs[:n], proof_inputs)
        # The reference's first batch is the proof's fp32 run on the same inputs: not run twice.
        ref32 = torch.from_numpy(reference[:n]) if same and n == REFERENCE_BATCH else None
        proof = prove_fusion(unfused, unproven, torch.from_numpy(proof_inputs), tolerance=tolerance, ref32=ref32)
        noise_floor = proof.fp32_noise_floor     # the proof ran the model in float64 on these inputs
    else:
        proof, noise_floor = skipped_proof(tolerance), fp32_noise_floor(unfused, proof_inputs)
    model = unproven.model64.float().eval() if unproven is not None else unfused     # as the run casts it
    _STATE[token] = _RunState(inputs, reference, noise_floor, model, torch.from_numpy(inputs.inputs[:1]))
    accuracy = None if inputs.labels is None else task_accuracy(reference, inputs.labels)
    return Prepared(proof, noise_floor, reference, accuracy)


def _validate(token: str, artifact: Artifact, gate_override: str | None) -> Checked:
    state = _STATE[token]
    gate = gate_for(artifact.quant, gate_override, fp32_noise_floor=state.noise_floor)
    validation = validate_artifact(artifact, state.inputs, state.reference, gate=gate)
    plot = plot_png(state.reference, validation.outputs) if validation.outputs is not None else None
    return Checked(validation, plot)


def _convert(token: str, target: str, plan: QuantPlan, info: ModelInfo, out_dir: str,
             options: ExportOptions, gate_override: str | None, validate: bool) -> Converted:
    state = _STATE[token]
    try:
        artifact = convert(state.model, info, target=target, plan=plan, out_dir=Path(out_dir),
                           sample=state.sample, options=options)
    except ConversionFailed as exc:
        return Converted(None, exc.message, None)
    return Converted(artifact, None, _validate(token, artifact, gate_override) if validate else None)


def _forget(token: str) -> None:
    _STATE.pop(token, None)


@torch.no_grad()
def logits_of(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    batches = [model(torch.from_numpy(inputs[i:i + REFERENCE_BATCH])).numpy()
               for i in range(0, len(inputs), REFERENCE_BATCH)]
    return np.concatenate(batches)


@torch.no_grad()
def fp32_noise_floor(model: torch.nn.Module, inputs: np.ndarray) -> float:
    """max rel err of PyTorch fp32 against the same model in float64: what fp32 itself costs."""
    import copy

    reference = logits_of(model, inputs)
    exact = logits_of(copy.deepcopy(model).double(), inputs.astype(np.float64))
    scale = float(np.abs(exact).max())
    return float(np.abs(reference - exact).max() / scale) if scale > 0 else 0.0

