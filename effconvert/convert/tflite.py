"""TFLite: litert-torch (PT2E / StableHLO lowering) -> `.tflite` with metadata inside.

Input `input`: float32 NHWC normalised pixels by default (Android camera pipelines deliver
channel-last buffers), `--layout nchw` keeps NCHW. Output `logits`. fp16 = float16 weights
(litert-torch's fp16 recipe); XNNPACK computes in fp32 or fp16 as the CPU allows.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import BadInput, ConversionFailed
from .quiet import first_line, quiet, quiet_native_stderr
from .tflite_metadata import add_metadata
from .wrappers import ChannelsLast

LAYOUTS = ("nhwc", "nchw")


def export_tflite(model: torch.nn.Module, sample: torch.Tensor, out: Path, *, metadata: dict[str, str],
                  quant: str, layout: str = "nhwc") -> None:
    if layout not in LAYOUTS:
        raise BadInput(f"--layout {layout} is not supported", hint="choose from: nhwc, nchw")
    module = ChannelsLast(model).eval() if layout == "nhwc" else model.eval()
    example = sample.permute(0, 2, 3, 1).contiguous() if layout == "nhwc" else sample
    with quiet(), quiet_native_stderr():             # TF/absl log to file descriptor 2
        import litert_torch

        litert_torch.config.show_progress = False
        quant_config = None
        if quant == "fp16":
            from litert_torch.generative.quantize import quant_recipes

            quant_config = quant_recipes.full_fp16_recipe()
        try:
            edge_model = litert_torch.convert(module, (example,), quant_config=quant_config)
        except Exception as exc:  # the converter raises many types; the message names the op
            raise ConversionFailed(f"TFLite conversion failed: {first_line(exc)}") from exc
        with atomic_path(out) as tmp:
            edge_model.export(str(tmp))
            data = add_metadata(tmp.read_bytes(), {**metadata, "effconvert.input_layout": layout},
                                input_name="input", output_name="logits")
            tmp.write_bytes(data)
