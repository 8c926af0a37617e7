"""quantize: how an artifact's numbers are made smaller, for every target.

    plan.py          QuantPlan — the typed plan of one artifact (mode, calibration, float layers,
                     fp32 islands, integer I/O); the exporters read nothing else about quantization
    calibration.py   Calibration — the int8 calibration images in both input forms
    equalize.py      scale migration before int8: activation range moved into the weights, exactly
    ranges.py        activation ranges of least squared int8 error (Core ML, the simulation)
    sensitivity.py   per-layer int8 sensitivity, simulated in PyTorch (the fallback's ranking)
    fallback.py      the float-fallback policy: which layers go back to float, in which order
    coreml.py        Core ML: int8 weights, W8A8 calibrated with the MIL executor, palettization
    tflite.py        TFLite: fp16 / dynamic-range recipes, PT2E W8A8, float GELUs and float I/O
    onnx.py          ONNX: fp16 with float32 input/output

The per-target quantizers are called by convert/ at the point of its conversion where each
applies; the pipeline builds the plan and runs the fallback's attempts. Nothing here imports
convert/, validate/ or the pipeline.
"""

from .calibration import Calibration
from .plan import QuantPlan
from .sensitivity import SIMULATION_BATCH, LayerSensitivity, layer_sensitivity, simulated_psnr

__all__ = ["SIMULATION_BATCH", "Calibration", "LayerSensitivity", "QuantPlan", "layer_sensitivity", "simulated_psnr"]
