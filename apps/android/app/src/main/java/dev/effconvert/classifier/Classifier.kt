package dev.effconvert.classifier

import android.content.Context
import android.graphics.Bitmap
import android.os.SystemClock
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.FileInputStream
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import kotlin.math.exp

enum class Accelerator(val label: String) {
    CPU("CPU (XNNPACK)"),
    GPU("GPU delegate"),
    NNAPI("NNAPI"),
}

data class Prediction(val label: String, val probability: Float)

data class Classification(val top5: List<Prediction>, val latencyMs: Double)

/** LiteRT interpreter around assets/model.tflite, on the accelerator the user picked. */
class Classifier(context: Context, val manifest: ModelManifest, accelerator: Accelerator) : AutoCloseable {
    private val preprocessor = ImagePreprocessor(manifest)
    private var gpu: GpuDelegate? = null
    private val interpreter: Interpreter
    private val logits = Array(1) { FloatArray(manifest.labels.size) }

    init {
        val options = Interpreter.Options().setNumThreads(4)
        when (accelerator) {
            Accelerator.CPU -> options.setUseXNNPACK(true)
            Accelerator.GPU -> GpuDelegate().also { gpu = it; options.addDelegate(it) }
            Accelerator.NNAPI -> options.setUseNNAPI(true)
        }
        interpreter = Interpreter(loadModel(context, "model.tflite"), options)
    }

    fun classify(bitmap: Bitmap): Classification {
        val input = preprocessor.toInput(bitmap)
        val start = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, logits)
        val latencyMs = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        return Classification(top5(softmax(logits[0])), latencyMs)
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

    override fun close() {
        interpreter.close()
        gpu?.close()
    }

    private fun loadModel(context: Context, asset: String): MappedByteBuffer {
        context.assets.openFd(asset).use { fd ->
            FileInputStream(fd.fileDescriptor).channel.use { channel ->
                return channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
        }
    }
}
