package dev.effconvert.classifier

import android.content.Context
import org.json.JSONObject

/**
 * What effconvert wrote beside the model (assets/manifest.json): labels, preprocessing, layout.
 * Nothing about the model is hard-coded in the app; it all comes from here.
 */
data class ModelManifest(
    val arch: String,
    val quant: String,
    val artifact: String,
    val sha256: String,
    val runtime: String,       // "litert" (model.tflite), "executorch" (model.pte), "onnxruntime-qnn" (model.qnn.onnx)
    val soc: String,           // the Snapdragon SoC a model.qnn.onnx was compiled for ("" otherwise)
    val inputLayout: String,   // "nhwc" or "nchw"
    val inputSize: Int,        // square side in pixels
    val mean: FloatArray,
    val std: FloatArray,
    val cropPct: Double,
    val labels: List<String>,
) {
    companion object {
        fun load(context: Context, asset: String = "manifest.json"): ModelManifest {
            val json = JSONObject(context.assets.open(asset).bufferedReader().use { it.readText() })
            val pre = json.getJSONObject("preprocessing")
            val size = pre.getJSONArray("input_size")
            val labels = json.getJSONArray("labels")
            return ModelManifest(
                arch = json.getString("arch"),
                quant = json.getString("quant"),
                artifact = json.getString("artifact"),
                sha256 = json.getString("sha256"),
                runtime = json.optString("runtime", "litert"),
                soc = json.optString("soc", ""),
                inputLayout = json.getString("input_layout"),
                inputSize = size.getInt(2),
                mean = floatArray(pre, "mean"),
                std = floatArray(pre, "std"),
                cropPct = pre.getDouble("crop_pct"),
                labels = List(labels.length()) { labels.getString(it) },
            )
        }

        private fun floatArray(obj: JSONObject, key: String): FloatArray {
            val array = obj.getJSONArray(key)
            return FloatArray(array.length()) { array.getDouble(it).toFloat() }
        }
    }
}
