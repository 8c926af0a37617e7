package dev.effconvert.classifier

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
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
            Accelerator.NPU -> throw IllegalArgumentException("a .tflite runs on CPU, GPU or NNAPI here")
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
        module = Module.load(copyAsset(context, manifest, "model.pte").absolutePath)
    }

    override fun run(input: ByteBuffer): FloatArray {
        input.rewind()
        input.asFloatBuffer().get(floats)
        val outputs = module.forward(EValue.from(Tensor.fromBlob(floats, shape)))
        return outputs[0].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()
}

/**
 * ONNX Runtime with Qualcomm's QNN execution provider around assets/model.qnn.onnx: an ONNX whose
 * EPContext node holds the HTP context binary effconvert compiled for the manifest's SoC, so the
 * phone loads it without compiling. The QNN EP is a plugin library (libonnxruntime_providers_qnn.so,
 * from com.qualcomm.qti:onnxruntime-android-qnn) registered with the environment once, then selected
 * for the session with the HTP backend. Nodes the compiler left out (the manifest's cpu_nodes: the
 * float input's quantization, the output's dequantization) run on ONNX Runtime's CPU provider.
 */
class OrtQnnRunner(context: Context, private val manifest: ModelManifest, accelerator: Accelerator) : ModelRunner {
    private val env = OrtEnvironment.getEnvironment()
    private val session: OrtSession
    private val shape = longArrayOf(1, 3, manifest.inputSize.toLong(), manifest.inputSize.toLong())

    init {
        require(accelerator == Accelerator.NPU) { "this model is compiled for the ${manifest.soc} NPU (HTP)" }
        registerQnn(env)
        val options = OrtSession.SessionOptions()
        val devices = env.epDevices.filter { it.epName == QNN_EP }
        require(devices.isNotEmpty()) { "the QNN execution provider found no HTP on this phone" }
        options.addExecutionProvider(devices, mapOf("backend_type" to "htp", "htp_performance_mode" to "burst"))
        session = env.createSession(copyAsset(context, manifest, "model.qnn.onnx").absolutePath, options)
    }

    override fun run(input: ByteBuffer): FloatArray {
        input.rewind()
        OnnxTensor.createTensor(env, input.asFloatBuffer(), shape).use { tensor ->
            session.run(mapOf(session.inputNames.first() to tensor)).use { result ->
                @Suppress("UNCHECKED_CAST")
                return (result[0].value as Array<FloatArray>)[0]
            }
        }
    }

    override fun close() = session.close()

    companion object {
        private const val QNN_EP = "QNNExecutionProvider"
        @Volatile private var registered = false

        @Synchronized
        private fun registerQnn(env: OrtEnvironment) {
            if (!registered) {
                env.registerExecutionProviderLibrary(QNN_EP, "libonnxruntime_providers_qnn.so")
                registered = true
            }
        }
    }
}

/** An asset as a file (ExecuTorch and ONNX Runtime load models by path), copied once per model. */
private fun copyAsset(context: Context, manifest: ModelManifest, asset: String): File {
    val target = File(context.filesDir, "${manifest.artifact}.${manifest.sha256.take(12)}")
    if (!target.exists()) {
        val partial = File(context.filesDir, "${target.name}.partial")
        context.assets.open(asset).use { source -> partial.outputStream().use { source.copyTo(it) } }
        partial.renameTo(target)
    }
    return target
}
