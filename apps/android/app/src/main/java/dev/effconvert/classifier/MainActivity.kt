package dev.effconvert.classifier

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Live camera classification: CameraX preview + analysis, LiteRT on the chosen accelerator. */
class MainActivity : AppCompatActivity() {
    private lateinit var manifest: ModelManifest
    private lateinit var results: TextView
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()
    @Volatile private var classifier: Classifier? = null

    private val permission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else results.setText(R.string.camera_denied)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        results = findViewById(R.id.results)
        manifest = ModelManifest.load(this)
        findViewById<TextView>(R.id.title).text = "${manifest.arch} · ${manifest.quant}"
        setupAcceleratorPicker(findViewById(R.id.accelerator))
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            permission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun setupAcceleratorPicker(spinner: Spinner) {
        spinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item,
            Accelerator.values().map { it.label })
        spinner.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                val accelerator = Accelerator.values()[position]
                analysisExecutor.execute {
                    classifier?.close()
                    classifier = try {
                        Classifier(this@MainActivity, manifest, accelerator)
                    } catch (error: Exception) {
                        runOnUiThread { results.text = "${accelerator.label} unavailable: ${error.message}" }
                        null
                    }
                }
            }

            override fun onNothingSelected(parent: AdapterView<*>?) {}
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val preview = Preview.Builder().build().also {
                it.setSurfaceProvider(findViewById<PreviewView>(R.id.preview).surfaceProvider)
            }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor) { image -> analyze(image) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        image.use {
            val model = classifier ?: return
            val bitmap = upright(it.toBitmap(), it.imageInfo.rotationDegrees)
            val result = model.classify(bitmap)
            val text = result.top5.joinToString("\n") { p -> "%-40s %5.1f%%".format(p.label.take(40), p.probability * 100) } +
                "\n%.1f ms per inference".format(result.latencyMs)
            runOnUiThread { results.text = text }
        }
    }

    private fun upright(bitmap: Bitmap, degrees: Int): Bitmap {
        if (degrees == 0) return bitmap
        val matrix = Matrix().apply { postRotate(degrees.toFloat()) }
        return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, matrix, true)
    }

    override fun onDestroy() {
        super.onDestroy()
        analysisExecutor.execute { classifier?.close() }
        analysisExecutor.shutdown()
    }
}
