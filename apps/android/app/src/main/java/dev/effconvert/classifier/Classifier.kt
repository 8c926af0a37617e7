package dev.effconvert.classifier

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import kotlin.math.exp

enum class Accelerator(val label: String) {
    CPU("CPU (XNNPACK)"),
    GPU("GPU delegate"),
    NNAPI("NNAPI"),
    NPU("NPU (Qualcomm HTP)"),
}

data class Prediction(val label: String, val probability: Float)

data class Classification(val top5: List<Prediction>, val latencyMs: Double)

/**
 * Preprocess, run, rank: the same for every runtime. The runner is chosen by the manifest's
 * `runtime` (written by effconvert from the artifact): LiteRT for assets/model.tflite, ExecuTorch
 * (XNNPACK) for assets/model.pte, ONNX Runtime with the QNN EP for assets/model.qnn.onnx.
 */
class Classifier(context: Context, val manifest: ModelManifest, accelerator: Accelerator) : AutoCloseable {
    private val preprocessor = ImagePreprocessor(manifest)
    private val runner: ModelRunner = when (manifest.runtime) {
        "executorch" -> ExecuTorchRunner(context, manifest, accelerator)
        "onnxruntime-qnn" -> OrtQnnRunner(context, manifest, accelerator)
        else -> LiteRtRunner(context, manifest, accelerator)
    }

    fun classify(bitmap: Bitmap): Classification {
        val input = preprocessor.toInput(bitmap)
        val start = SystemClock.elapsedRealtimeNanos()
        val logits = runner.run(input)
        val latencyMs = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        return Classification(top5(softmax(logits)), latencyMs)
    }

    private fun softmax(values: FloatArray): FloatArray {
        val max = values.maxOrNull() ?: 0f
        val exps = values.map { exp((it - max).toDouble()) }
        val sum = exps.sum()
        return FloatArray(values.size) { (exps[it] / sum).toFloat() }
    }

    private fun top5(probabilities: FloatArray): List<Prediction> =
        probabilities.indices.sortedByDescending { probabilities[it] }.take(5)
            .map { Prediction(manifest.labels[it], probabilities[it]) }

    override fun close() = runner.close()
}
