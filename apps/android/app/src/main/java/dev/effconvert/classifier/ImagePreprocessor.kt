package dev.effconvert.classifier

import android.graphics.Bitmap
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.math.floor
import kotlin.math.round

/**
 * The model's evaluation transform, as the manifest describes it (timm's eval transform):
 * resize the short side to floor(size / cropPct), centre-crop size x size, then
 * (pixel / 255 - mean) / std per channel, written in the artifact's layout (NHWC or NCHW).
 * Android's Bitmap scaling is bilinear where timm uses bicubic; the difference is small and
 * is the one approximation made here.
 */
class ImagePreprocessor(private val manifest: ModelManifest) {
    private val size = manifest.inputSize
    private val buffer: ByteBuffer =
        ByteBuffer.allocateDirect(4 * 3 * size * size).order(ByteOrder.nativeOrder())
    private val pixels = IntArray(size * size)

    /** Same geometry as timm/torchvision: short side -> floor(size / cropPct), long side scaled
     *  and truncated, crop offsets rounded half to even (kotlin.math.round, like Python's round). */
    fun resizeAndCrop(source: Bitmap): Bitmap {
        val scaled = floor(size / manifest.cropPct).toInt()
        val (width, height) = if (source.width <= source.height) {
            scaled to (scaled.toDouble() * source.height / source.width).toInt()
        } else {
            (scaled.toDouble() * source.width / source.height).toInt() to scaled
        }
        val resized = Bitmap.createScaledBitmap(source, width, height, true)
        val left = round((width - size) / 2.0).toInt()
        val top = round((height - size) / 2.0).toInt()
        return Bitmap.createBitmap(resized, left, top, size, size)
    }

    fun toInput(source: Bitmap): ByteBuffer {
        val image = resizeAndCrop(source)
        image.getPixels(pixels, 0, size, 0, 0, size, size)
        buffer.rewind()
        val floats = buffer.asFloatBuffer()
        val plane = size * size
        for (i in 0 until plane) {
            val argb = pixels[i]
            val rgb = floatArrayOf(
                ((argb shr 16) and 0xFF) / 255f,
                ((argb shr 8) and 0xFF) / 255f,
                (argb and 0xFF) / 255f,
            )
            for (c in 0 until 3) {
                val value = (rgb[c] - manifest.mean[c]) / manifest.std[c]
                if (manifest.inputLayout == "nchw") floats.put(c * plane + i, value) else floats.put(i * 3 + c, value)
            }
        }
        return buffer
    }
}
