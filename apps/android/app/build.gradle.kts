plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.effconvert.classifier"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.effconvert.classifier"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    // The model is memory-mapped from the APK: it must stay uncompressed.
    androidResources {
        noCompress += listOf("tflite", "pte", "onnx")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

// Versions: gradle/libs.versions.toml, each runtime at its exporter's version.
dependencies {
    implementation(libs.appcompat)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)
    implementation(libs.litert)
    implementation(libs.litert.gpu)
    // ExecuTorch runtime with the XNNPACK backend, for a .pte model (effconvert --target executorch).
    implementation(libs.executorch)
    // ONNX Runtime with Qualcomm's QNN EP plugin and runtime, for a .qnn.onnx (effconvert --target qnn).
    implementation(libs.onnxruntime)
    implementation(libs.onnxruntime.qnn)
    implementation(libs.qnn.runtime)
}
