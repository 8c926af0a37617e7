"""TFLite quantizers, around litert-torch's conversion:

fp16          litert-torch's fp16 recipe (float16 weights)
int8-weights  litert-torch's dynamic-range recipe (int8 per-channel weights, float activations)
int8          PT2E static W8A8 (per-channel symmetric weights, int8 activations calibrated on
              the calibration images); after conversion the flatbuffer's GELUs run in float
              (tflite_float_gelu.py) and float input/output is added unless `int8_io`
              (tflite_float_io.py)
"""

from __future__ import annotations

import torch

from ..stopwatch import Stopwatch
from .plan import QuantPlan
from .pt2e import calibrated_int8, keeps_float
from .tflite_float_io import rewrite_int8_model


def quant_config(
    module: torch.nn.Module,
    example: torch.Tensor,
    plan: QuantPlan,
    *,
    channels_last: bool,
    module_prefix: str = "",
    clock: Stopwatch | None = None,
):
    """(module to convert, litert-torch quant_config) for the plan; fp32 is (module, None)."""
    from litert_torch.generative.quantize import quant_recipes

    if plan.quant == "fp16":
        return module, quant_recipes.full_fp16_recipe()
    if plan.quant == "int8-weights":
        # (litert-torch's PT2E dynamic mode was measured broken on FastViT: 13 dB, 8 % accuracy
        # on the digits model; its dynamic-range recipe is not.)
        return module, quant_recipes.full_dynamic_recipe()
    if plan.quant == "int8":
        if plan.calibration is None or len(plan.calibration) == 0:
            raise ValueError("int8 needs calibration images")
        calibration = torch.as_tensor(plan.calibration.inputs)
        if channels_last:
            calibration = calibration.permute(0, 2, 3, 1).contiguous()
        with (clock or Stopwatch()).running():  # a raw PT2E user does the same steps
            return pt2e_int8(
                module, example, calibration, frozenset(module_prefix + name for name in plan.float_layers)
            )
    return module, None


def pt2e_int8(
    module: torch.nn.Module,
    example: torch.Tensor,
    calibration: torch.Tensor,
    float_layers: frozenset[str] = frozenset(),
):
    """PT2E static with litert-torch's quantizer. Returns (module, config)."""
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig

    quantized = keeps_float(float_layers)

    class Quantizer(pt2e_quantizer.PT2EQuantizer):
        """Leaves the ops of `float_layers` unannotated, hence float. (litert-torch's own
        set_module_name matches on mangled names that torch.export no longer produces.)"""

        def _annotate_for_static_quantization_config(self, model):
            return self._annotate_all_static_patterns(model, self.global_config, quantized)

    quantizer = Quantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    graph = calibrated_int8(module, example, calibration, quantizer, fold_quantize=False)
    return graph, QuantConfig(pt2e_quantizer=quantizer)


def finish(data: bytes, plan: QuantPlan) -> bytes:
    """The flatbuffer edits after conversion (int8 only: float GELUs, float I/O unless int8_io)."""
    if plan.quant != "int8":
        return data
    return rewrite_int8_model(data, float_io=not plan.int8_io)


def notes(plan: QuantPlan) -> list[str]:
    found = []
    if plan.quant == "int8":
        io = "int8 input/output" if plan.int8_io else "float input/output around the int8 graph"
        found.append(f"W8A8 (per-channel weights), calibrated on {len(plan.calibration or ())} images; {io}")
        if plan.float_layers:
            found.append(f"kept in float: {', '.join(plan.float_layers)}")
    if plan.quant == "int8-weights":
        found.append("dynamic-range int8: int8 weights, float activations")
    return found
