package dev.effconvert.classifier

import android.content.Context
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.File
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/** One forward pass: the preprocessed input buffer in, the logits out. */
interface ModelRunner : AutoCloseable {
    fun run(input: ByteBuffer): FloatArray
}

/** LiteRT interpreter around assets/model.tflite, on the accelerator the user picked. */
class LiteRtRunner(context: Context, manifest: ModelManifest, accelerator: Accelerator) : ModelRunner {
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
        interpreter = Interpreter(mapAsset(context, "model.tflite"), options)
    }

    override fun run(input: ByteBuffer): FloatArray {
        interpreter.run(input, logits)
        return logits[0]
    }

    override fun close() {
        interpreter.close()
        gpu?.close()
    }

    private fun mapAsset(context: Context, asset: String): MappedByteBuffer {
        context.assets.openFd(asset).use { fd ->
            FileInputStream(fd.fileDescriptor).channel.use { channel ->
                return channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
        }
    }
}

/**
 * ExecuTorch Module around assets/model.pte (XNNPACK-delegated by effconvert). Module.load needs a
 * file path, so the asset is copied to the app's files once. The program's delegate is fixed at
 * export time: the accelerator picker applies to LiteRT only.
 */
class ExecuTorchRunner(context: Context, private val manifest: ModelManifest, accelerator: Accelerator) : ModelRunner {
    private val module: Module
    private val shape = longArrayOf(1, 3, manifest.inputSize.toLong(), manifest.inputSize.toLong())
    private val floats = FloatArray(3 * manifest.inputSize * manifest.inputSize)

    init {
        require(accelerator == Accelerator.CPU) { "this .pte is lowered to XNNPACK (CPU)" }
        module = Module.load(copyAsset(context, "model.pte").absolutePath)
    }

    override fun run(input: ByteBuffer): FloatArray {
        input.rewind()
        input.asFloatBuffer().get(floats)
        val outputs = module.forward(EValue.from(Tensor.fromBlob(floats, shape)))
        return outputs[0].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()

    private fun copyAsset(context: Context, asset: String): File {
        val target = File(context.filesDir, "${manifest.artifact}.${manifest.sha256.take(12)}")
        if (!target.exists()) {
            val partial = File(context.filesDir, "${target.name}.partial")
            context.assets.open(asset).use { source -> partial.outputStream().use { source.copyTo(it) } }
            partial.renameTo(target)
        }
        return target
    }
}
