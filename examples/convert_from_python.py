"""Convert a checkpoint from Python: the whole pipeline in one call, then the stages one by one.

    python examples/convert_from_python.py [WORK_DIR]

Builds its own checkpoint (a make-checkpoint FastViT-T8: realistic numbers, not trained), so it
runs anywhere effconvert is installed. tests/test_examples.py runs it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import effconvert
from effconvert.synth.checkpoint import make_checkpoint


def main(work: Path) -> int:
    checkpoint = make_checkpoint("fastvit_t8", work / "fastvit_t8.pth", layout="apple", seed=0).path

    # 1. One call: every (target, quant) converted, validated on its runtime, report written.
    result = effconvert.convert(checkpoint, targets=["onnx"], quants=["fp32", "fp16"], out=work / "out", samples=8)
    for artifact in result.artifacts:  # the typed report: what report.json holds
        parity = artifact.verdict.parity
        print(
            f"{artifact.path}: {artifact.size_bytes / 1e6:.1f} MB on {artifact.runtime}, "
            f"PSNR {parity.psnr_db:.1f} dB, {'passed' if artifact.passed else 'FAILED'}"
        )
    print(f"report: {result.report_path} (exit code {result.exit_code})")

    # 2. The stages on their own: load, fuse (with its proof), validate an artifact.
    loaded = effconvert.load(checkpoint)
    fused = effconvert.fuse(loaded)
    print(
        f"{loaded.arch} from the {loaded.source_layout} layout: {fused.proof.modules_fused} modules fused, "
        f"max rel err {fused.proof.max_rel_err:.1e}"
    )
    check = effconvert.validate(work / "out" / "fastvit_t8_fp16.onnx", loaded)
    print(f"fp16 ONNX on {check.runtime}: PSNR {check.verdict.parity.psnr_db:.1f} dB, passed {check.passed}")

    # 3. Errors users can cause are one exception family, with the CLI's exit code.
    try:
        effconvert.convert(checkpoint, targets=["onnx"], quants=["int8"], out=work / "refused")
    except effconvert.EffconvertError as exc:
        print(f"refused (exit {exc.exit_code}): {exc.message}")
    return 0 if result.passed and check.passed else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp)))
