"""TFLite: litert-torch (PT2E / StableHLO lowering) -> `.tflite` with metadata inside.

Input `input`: float32 NHWC normalised pixels by default (Android camera pipelines deliver
channel-last buffers), `--layout nchw` keeps NCHW. Output `logits`. fp16 = float16 weights
(litert-torch's fp16 recipe); XNNPACK computes in fp32 or fp16 as the CPU allows.
int8 = full-integer W8A8 through litert-torch's PT2E quantizer (per-channel symmetric weights,
int8 activations calibrated on the calibration images), GELUs run in float between DEQUANTIZE
and QUANTIZE (XNNPACK has no int8 GELU; tflite_float_gelu.py), with float input/output added
around it unless `--int8-io`; int8-weights = litert-torch's dynamic-range recipe (int8 per-channel
weights, activations quantized on the fly by the kernels that support it, float elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import BadInput, ConversionFailed
from .quiet import first_line, quiet, quiet_native_stderr
from .stopwatch import Stopwatch
from .tflite_float_io import rewrite_int8_model
from .tflite_large_kernels import MAX_TILE, tile_large_depthwise
from .tflite_metadata import add_metadata
from .wrappers import ChannelsLast

LAYOUTS = ("nhwc", "nchw")


def export_tflite(model: torch.nn.Module, sample: torch.Tensor, out: Path, *, metadata: dict[str, str],
                  quant: str, layout: str = "nhwc", calibration: torch.Tensor | None = None,
                  int8_io: bool = False, float_layers: tuple[str, ...] = (),
                  clock: Stopwatch | None = None) -> list[str]:
    """Write `out`; return notes for the report. `float_layers` (int8): module names of `model`
    kept in float (the sensitivity fallback)."""
    if layout not in LAYOUTS:
        raise BadInput(f"--layout {layout} is not supported", hint="choose from: nhwc, nchw")
    tiled = 0
    if quant != "int8-weights":   # dynamic range re-quantizes the input once per tile: measured slower
        model, tiled = tile_large_depthwise(model, sample)
    module = ChannelsLast(model).eval() if layout == "nhwc" else model.eval()
    example = sample.permute(0, 2, 3, 1).contiguous() if layout == "nhwc" else sample
    clock = clock or Stopwatch()
    with quiet(), quiet_native_stderr():             # TF/absl log to file descriptor 2
        import litert_torch

        litert_torch.config.show_progress = False
        quant_config = None
        if quant == "fp16":
            from litert_torch.generative.quantize import quant_recipes

            quant_config = quant_recipes.full_fp16_recipe()
        try:
            if quant == "int8-weights":
                # litert-torch's dynamic-range recipe. (Its PT2E dynamic mode was measured broken
                # on FastViT: 13 dB, 8 % accuracy on the digits model.)
                from litert_torch.generative.quantize import quant_recipes

                quant_config = quant_recipes.full_dynamic_recipe()
            elif quant == "int8":
                if calibration is not None and layout == "nhwc":
                    calibration = calibration.permute(0, 2, 3, 1).contiguous()
                with clock.running():                      # a raw PT2E user does the same steps
                    prefix = "model." if layout == "nhwc" else ""      # ChannelsLast wraps the model
                    module, quant_config = _pt2e_int8(module, example, calibration,
                                                      frozenset(prefix + name for name in float_layers))
            with clock.running():
                edge_model = litert_torch.convert(module, (example,), quant_config=quant_config)
        except Exception as exc:  # the converter raises many types; the message names the op
            raise ConversionFailed(f"TFLite conversion failed: {first_line(exc)}") from exc
        with atomic_path(out) as tmp:
            with clock.running():
                edge_model.export(str(tmp))
            data = add_metadata(tmp.read_bytes(), {**metadata, "effconvert.input_layout": layout,
                                                   "effconvert.int8_io": str(int8_io).lower()},
                                input_name="input", output_name="logits")
            if quant == "int8":                            # float GELUs; float I/O unless --int8-io
                data = rewrite_int8_model(data, float_io=not int8_io)
            tmp.write_bytes(data)
    return [f"{tiled} depthwise conv(s) larger than {MAX_TILE}x{MAX_TILE} computed as {MAX_TILE}x{MAX_TILE} tiles "
            "(XNNPACK's fast kernels)"] if tiled else []


def _pt2e_int8(module: torch.nn.Module, example: torch.Tensor, calibration: torch.Tensor | None,
               float_layers: frozenset[str] = frozenset()):
    """PT2E static: export, insert observers, calibrate, convert. Returns (module, config)."""
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    class Quantizer(pt2e_quantizer.PT2EQuantizer):
        """Leaves the ops of `float_layers` unannotated, hence float. (litert-torch's own
        set_module_name matches on mangled names that torch.export no longer produces.)"""

        def _annotate_for_static_quantization_config(self, model):
            def quantized(node) -> bool:
                stack = node.meta.get("nn_module_stack", {})
                return not any(path in float_layers for path, _ in stack.values())

            return self._annotate_all_static_patterns(model, self.global_config, quantized)

    quantizer = Quantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    graph = torch.export.export(module, (example,)).module()
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    if calibration is None or len(calibration) == 0:
        raise ConversionFailed("int8 needs calibration images")
    with torch.no_grad():
        for i in range(len(calibration)):                  # batch 1: the exported shape
            graph(calibration[i:i + 1])
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    return graph, QuantConfig(pt2e_quantizer=quantizer)
