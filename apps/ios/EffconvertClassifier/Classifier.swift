import CoreML
import CoreVideo
import Foundation
import ImageIO
import Vision

enum ClassifierError: LocalizedError {
    case missingResource(String)
    case noResults

    var errorDescription: String? {
        switch self {
        case .missingResource(let name): return "\(name) is not in the app bundle; run `effconvert app ios`"
        case .noResults: return "the model returned no classification"
        }
    }
}

/// Which processors Core ML may use; the same choices as MLComputeUnits.
enum ComputeChoice: String, CaseIterable, Identifiable {
    case all = "All"
    case cpuAndGPU = "CPU + GPU"
    case cpuOnly = "CPU only"
    case cpuAndNeuralEngine = "CPU + Neural Engine"

    var id: String { rawValue }

    var units: MLComputeUnits {
        switch self {
        case .all: return .all
        case .cpuAndGPU: return .cpuAndGPU
        case .cpuOnly: return .cpuOnly
        case .cpuAndNeuralEngine: return .cpuAndNeuralEngine
        }
    }
}

struct Prediction: Identifiable {
    let id = UUID()
    let label: String
    let probability: Float
}

struct ClassificationResult {
    let top5: [Prediction]
    let latencyMs: Double
}

/// Runs the embedded model through Vision, which resizes and crops the frame the way the
/// manifest describes: the central `cropPct` of the image, then a center square scaled to the
/// model's input (the same region timm's eval transform keeps).
final class Classifier {
    let manifest: ModelManifest
    private let request: VNCoreMLRequest

    init(computeUnits: MLComputeUnits) throws {
        manifest = try ModelManifest.load()
        guard let url = Bundle.main.url(forResource: "Model", withExtension: "mlmodelc") else {
            throw ClassifierError.missingResource("Model.mlmodelc")
        }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let model = try MLModel(contentsOf: url, configuration: configuration)
        request = VNCoreMLRequest(model: try VNCoreMLModel(for: model))
        request.imageCropAndScaleOption = .centerCrop
        let crop = CGFloat(manifest.preprocessing.cropPct)
        request.regionOfInterest = CGRect(x: (1 - crop) / 2, y: (1 - crop) / 2, width: crop, height: crop)
    }

    func classify(pixelBuffer: CVPixelBuffer, orientation: CGImagePropertyOrientation) throws -> ClassificationResult {
        try run(VNImageRequestHandler(cvPixelBuffer: pixelBuffer, orientation: orientation))
    }

    func classify(cgImage: CGImage, orientation: CGImagePropertyOrientation) throws -> ClassificationResult {
        try run(VNImageRequestHandler(cgImage: cgImage, orientation: orientation))
    }

    private func run(_ handler: VNImageRequestHandler) throws -> ClassificationResult {
        let start = CFAbsoluteTimeGetCurrent()
        try handler.perform([request])
        let latencyMs = (CFAbsoluteTimeGetCurrent() - start) * 1000
        guard let observations = request.results as? [VNClassificationObservation], !observations.isEmpty else {
            throw ClassifierError.noResults
        }
        let top5 = observations.prefix(5).map { Prediction(label: $0.identifier, probability: $0.confidence) }
        return ClassificationResult(top5: Array(top5), latencyMs: latencyMs)
    }
}
