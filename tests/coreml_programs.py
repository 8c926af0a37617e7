"""Small Core ML programs the tests build by hand (shared by the executor and device tests)."""

from __future__ import annotations

from pathlib import Path


def rank_six_package(path: Path, *, fp16: bool) -> Path:
    """A saved program whose transpose ('window_partition', Microsoft EfficientViT's 6-D window view)
    declares rank 6. coremltools 9 refuses to save such a program, so the package is edited after
    saving, as a converter that does not check would leave it."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 2, 4, 4, 2))], opset_version=ct.target.iOS16)
    def program(x):
        y = mb.transpose(x=x, perm=[0, 2, 1, 3, 4], name="window_partition")
        return mb.reshape(x=y, shape=[1, 8, 8])

    precision = ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32
    ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=precision,
        skip_model_load=True,
    ).save(str(path))
    model_file = path / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec = ct.proto.Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        if op.type == "transpose":  # fp16 conversion renames it window_partition_cast_fp16
            op.outputs[0].type.tensorType.dimensions.add().constant.size = 1
            op.outputs[0].type.tensorType.rank = 6
    model_file.write_bytes(spec.SerializeToString())
    return path
